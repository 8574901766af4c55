"""Outbound mail: render, compose, protect, then the transactional outbox and its SMTP relay."""
