"""Signed per-case reply addresses and per-message bounce (VERP) addresses.

A reminder's ``Reply-To`` is ``reply+<token>@<reply domain>``; its envelope sender is
``bounce+<token>@<domain>``. The token names its target (a case id, or the outbox message a
bounce belongs to) and carries a truncated HMAC-SHA256 under ``security.reply_token_key``, so
an address can be neither guessed nor forged, nor moved to another domain or another purpose::

    token  = base32(version | nonce (4 bytes) | id XOR mask (8 bytes) | mac (10 bytes))
    mask   = HMAC-SHA256(key, purpose | "/mask" | 0 | nonce)[:8]
    mac    = HMAC-SHA256(key, purpose | 0 | domain | 0 | version | nonce | masked id)[:10]

The random nonce makes every address new and the mask hides the id, so addresses do not
reveal how many cases or messages there are. Tokens use lower-case base32 without padding
(``a-z2-7``): mail servers may change the case of a local part, and the parser lower-cases
before decoding. A token is 37 characters, well below the 64 a local part may have
(RFC 5321, 4.5.3.1.1).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Iterable
from email.utils import getaddresses

from hub.config import SecuritySection
from hub.errors import ConfigError

VERSION = 1
MAC_BYTES = 10
NONCE_BYTES = 4
ID_BYTES = 8
MIN_KEY_BYTES = 16
TOKEN_BYTES = 1 + NONCE_BYTES + ID_BYTES + MAC_BYTES
REPLY_PREFIX = "reply+"
BOUNCE_PREFIX = "bounce+"
_REPLY_PURPOSE = b"hub-reply"
_BOUNCE_PURPOSE = b"hub-bounce"
_MAX_ID = 2 ** (8 * ID_BYTES - 1) - 1
_TOKEN_CHARS = re.compile(r"^[a-z2-7]+$")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})+$")


def reply_token_key(security: SecuritySection) -> bytes:
    """The HMAC key from the settings (base64), or :class:`ConfigError` saying what is wrong."""
    if security.reply_token_key is None:
        raise ConfigError(
            "security.reply_token_key is not set: set HUB_SECURITY_REPLY_TOKEN_KEY "
            "(or security.reply_token_key_file) to a base64 key of 32 random bytes"
        )
    try:
        key = base64.b64decode(security.reply_token_key.get_secret_value().strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("security.reply_token_key is not valid base64") from None
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"security.reply_token_key must be at least {MIN_KEY_BYTES} bytes")
    return key


def _check_key(key: bytes) -> None:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the token key must be at least {MIN_KEY_BYTES} bytes")


def _normal_domain(domain: str) -> str:
    normal = domain.strip().rstrip(".").lower()
    if not _DOMAIN.match(normal):
        raise ValueError("not a domain name (expected something like hub.example.org)")
    return normal


def _check_id(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _MAX_ID:
        raise ValueError(f"{what} must be a positive 63-bit integer")


def _mac(key: bytes, purpose: bytes, domain: str, body: bytes) -> bytes:
    message = purpose + b"\0" + domain.encode("ascii") + b"\0" + body
    return hmac.new(key, message, hashlib.sha256).digest()[:MAC_BYTES]


def _encode(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def _decode(token: str, expected_len: int) -> bytes | None:
    if len(token) != len(_encode(bytes(expected_len))) or not _TOKEN_CHARS.match(token):
        return None
    padded = token.upper() + "=" * (-len(token) % 8)
    try:
        raw = base64.b32decode(padded)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != expected_len or _encode(raw) != token:
        return None  # the last character has a spare bit: accept only the canonical spelling
    return raw


def _split(address: str, prefix: str) -> tuple[str, str] | None:
    """``(token, domain)`` of ``prefix<token>@domain``, case-insensitively, else None."""
    text = address.strip()
    if "<" in text:  # "Name <reply+...@domain>"
        parsed = getaddresses([text])
        if len(parsed) != 1:
            return None
        text = parsed[0][1]
    text = text.lower()
    local, sep, domain = text.rpartition("@")
    if not sep or not local.startswith(prefix):
        return None
    try:
        return local[len(prefix) :], _normal_domain(domain)
    except ValueError:
        return None


def _domain_matches(found: str, expected: str | None) -> bool:
    return expected is None or found == _normal_domain(expected)


def _mask(key: bytes, purpose: bytes, nonce: bytes) -> bytes:
    return hmac.new(key, purpose + b"/mask\0" + nonce, hashlib.sha256).digest()[:ID_BYTES]


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def _make(key: bytes, purpose: bytes, prefix: str, value: int, domain: str) -> str:
    _check_key(key)
    domain = _normal_domain(domain)
    nonce = os.urandom(NONCE_BYTES)
    masked = _xor(value.to_bytes(ID_BYTES, "big"), _mask(key, purpose, nonce))
    body = bytes([VERSION]) + nonce + masked
    return f"{prefix}{_encode(body + _mac(key, purpose, domain, body))}@{domain}"


def _parse(
    key: bytes, purpose: bytes, prefix: str, address: str, expected_domain: str | None
) -> int | None:
    _check_key(key)
    parts = _split(address, prefix)
    if parts is None or not _domain_matches(parts[1], expected_domain):
        return None
    raw = _decode(parts[0], TOKEN_BYTES)
    if raw is None or raw[0] != VERSION:
        return None
    body, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    if not hmac.compare_digest(mac, _mac(key, purpose, parts[1], body)):
        return None
    nonce, masked = body[1 : 1 + NONCE_BYTES], body[1 + NONCE_BYTES :]
    value = int.from_bytes(_xor(masked, _mask(key, purpose, nonce)), "big")
    return value if 0 < value <= _MAX_ID else None


def make_reply_address(key: bytes, case_id: int, domain: str) -> str:
    """A fresh reply address for a case: ``reply+<token>@<domain>`` (a new nonce each call)."""
    _check_id(case_id, "case_id")
    return _make(key, _REPLY_PURPOSE, REPLY_PREFIX, case_id, domain)


def parse_reply_address(key: bytes, address: str, *, domain: str | None = None) -> int | None:
    """The case id a reply address names, or None for anything not signed by ``key``.

    The domain is part of the signature, so a token moved to another domain fails; pass
    ``domain`` to accept only the hub's own reply domain as well.
    """
    return _parse(key, _REPLY_PURPOSE, REPLY_PREFIX, address, domain)


def make_bounce_address(key: bytes, message_ref: int, domain: str) -> str:
    """The envelope sender (VERP) for one outbound message: ``bounce+<token>@<domain>``.

    ``message_ref`` is the id of the outbox row, so a bounce leads to the exact message, its
    Message-ID and its case.
    """
    _check_id(message_ref, "message_ref")
    return _make(key, _BOUNCE_PURPOSE, BOUNCE_PREFIX, message_ref, domain)


def parse_bounce_address(key: bytes, address: str, *, domain: str | None = None) -> int | None:
    """The message reference a bounce address names, or None when it is not ours."""
    return _parse(key, _BOUNCE_PURPOSE, BOUNCE_PREFIX, address, domain)


def case_from_recipients(
    key: bytes, addresses: Iterable[str], *, domain: str | None = None
) -> int | None:
    """The case named by the first valid reply address among a mail's recipients, if any.

    Pass the addresses from ``Delivered-To``, ``X-Original-To``, ``To`` and ``Cc`` (in that
    order of trust); forwarded mail may carry the token only in one of them.
    """
    for address in addresses:
        case_id = parse_reply_address(key, address, domain=domain)
        if case_id is not None:
            return case_id
    return None
