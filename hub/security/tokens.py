"""Random secret tokens and the hashes they are stored as.

Session, API, password-reset and recovery tokens carry at least 80 bits of randomness, so a
plain SHA-256 is enough to store them (nobody can guess their way back); the database never
holds a token itself. CSRF tokens are an HMAC of the session token under the web secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from hub.errors import ConfigError

#: prefix of API tokens, so a leaked one is recognisable (and secret scanners find it)
API_TOKEN_PREFIX = "hubt_"  # noqa: S105 - a prefix, not a secret


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def new_api_token() -> str:
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def decode_secret(value: str) -> bytes:
    """The web session secret: base64 of at least 32 bytes."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError("web.session_secret: not valid base64") from exc
    if len(raw) < 32:
        raise ConfigError("web.session_secret: must be at least 32 bytes (hub keys generate)")
    return raw


def csrf_token(secret: bytes, binding: str) -> str:
    """The CSRF token for a session (or an anonymous visitor's pre-session cookie)."""
    mac = hmac.new(secret, b"csrf:" + binding.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


def csrf_matches(secret: bytes, binding: str, offered: str | None) -> bool:
    if not offered or not binding:
        return False
    return hmac.compare_digest(csrf_token(secret, binding), offered)
