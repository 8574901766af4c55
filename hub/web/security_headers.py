"""Headers every response carries: a strict Content-Security-Policy and its companions.

The pages use no script at all and only the hub's own stylesheet, so the policy forbids
everything else: an injected ``<script>``, an ``onerror=`` handler or a remote ``<img>`` in a
mail body would do nothing even if escaping ever failed.
"""

from __future__ import annotations

from aiohttp import web

from hub.web import keys

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers["Content-Security-Policy"] = CSP
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if not request.path.startswith("/static/"):
        headers["Cache-Control"] = "no-store"
    if request.app[keys.CONFIG].tls or request.get(keys.FORWARDED_HTTPS):
        headers["Strict-Transport-Security"] = HSTS
