"""Routing: signed reply and bounce addresses, and matching a reply to its case."""
