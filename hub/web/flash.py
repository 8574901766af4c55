"""A confirmation shown after a redirect (``?done=...``), signed so that a link cannot show one.

The text travels in the URL of the page the form redirects to. Without a signature anyone
could send a collector a link to ``/triage?done=Your session expired, call ...``, and the
hub's own page would show that text in its confirmation box (content spoofing). The
signature is an HMAC under the web secret, so only the hub's redirects carry a valid one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlencode

from aiohttp import web

from hub.web import keys

MAX_MESSAGE = 300


def _signature(secret: bytes, message: str) -> str:
    mac = hmac.new(secret, b"flash:" + message.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:16]).decode("ascii").rstrip("=")


def flash_query(request: web.Request, message: str) -> str:
    """``done=<message>&ds=<signature>`` for the Location of a redirect."""
    message = message[:MAX_MESSAGE]
    secret = request.app[keys.CONFIG].csrf_secret
    return urlencode({"done": message, "ds": _signature(secret, message)})


def flash_message(request: web.Request) -> str | None:
    """The confirmation of this page's URL, if the hub signed it; else nothing."""
    message = request.query.get("done", "")
    offered = request.query.get("ds", "")
    if not message or not offered or len(message) > MAX_MESSAGE:
        return None
    secret = request.app[keys.CONFIG].csrf_secret
    return message if hmac.compare_digest(_signature(secret, message), offered) else None
