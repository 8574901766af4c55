"""The web application: aiohttp pages and JSON API for collectors, creditors and auditors."""
