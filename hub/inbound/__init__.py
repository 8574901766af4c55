"""Inbound mail: fetch, parse, unprotect, detect, extract the reply text."""
