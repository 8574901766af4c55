"""Unprotect an incoming message: decrypt, verify, learn keys, keep every part's protection.

``unprotect(raw, keys)`` takes the raw bytes of a message and returns a frozen
:class:`~hub.inbound.unprotect.result.Unprotected`: the leaf parts each with its protection
status (EFAIL-safe rendering: :meth:`~hub.inbound.unprotect.result.Unprotected.text_body`),
every decryption and signature verdict (the signer checked against From), the ciphertexts as
received, and the keys the sender offered. Pure bytes in, verdict out: no network, no database.
It blocks (gpg, openssl); :func:`aunprotect` runs it in a worker thread.
"""

from __future__ import annotations

import asyncio
from email.headerregistry import Address
from email.utils import parseaddr

from hub.inbound.unprotect import keys_learnt
from hub.inbound.unprotect.inbound_keys import InboundKeys
from hub.inbound.unprotect.mime_bytes import parse_entity
from hub.inbound.unprotect.mime_walk import Layer, Walker
from hub.inbound.unprotect.result import (
    DecryptionCheck,
    DecryptionVerdict,
    LearntKey,
    Method,
    ProtectedPart,
    SignatureCheck,
    SignatureVerdict,
    Unprotected,
)

__all__ = [
    "DecryptionCheck",
    "DecryptionVerdict",
    "InboundKeys",
    "LearntKey",
    "Method",
    "ProtectedPart",
    "SignatureCheck",
    "SignatureVerdict",
    "Unprotected",
    "aunprotect",
    "unprotect",
]


def _from(value: object) -> tuple[str | None, str | None]:
    addresses = getattr(value, "addresses", None)
    if addresses:
        first = addresses[0]
        if isinstance(first, Address) and first.addr_spec and "@" in first.addr_spec:
            return first.display_name or None, first.addr_spec.strip().lower()
    name, address = parseaddr(str(value or ""))
    return name or None, address.strip().lower() if "@" in address else None


def unprotect(raw: bytes, keys: InboundKeys) -> Unprotected:
    """Open every protected layer of the message ``raw`` (see the module docstring)."""
    message = parse_entity(raw)
    errors: list[str] = []
    try:
        from_header = message["From"]
        subject = message["Subject"]
        message_id = message["Message-ID"]
    except (IndexError, ValueError, TypeError) as exc:  # broken header syntax
        errors.append(f"unreadable header: {type(exc).__name__}")
        from_header = subject = message_id = None
    from_name, from_address = _from(from_header)
    walker = Walker(keys, from_address)
    walker.walk(message, raw, Layer())
    learnt, notes = keys_learnt.autocrypt_keys(message, from_address, keys)
    return Unprotected(
        raw=raw,
        subject=str(subject) if subject is not None else None,
        from_name=from_name,
        from_address=from_address,
        message_id=str(message_id).strip() if message_id is not None else None,
        parts=tuple(walker.parts),
        decryptions=tuple(walker.decryptions),
        signatures=tuple(walker.signatures),
        learnt_keys=keys_learnt.unique([*learnt, *walker.learnt]),
        errors=tuple([*errors, *walker.errors, *notes]),
    )


async def aunprotect(raw: bytes, keys: InboundKeys) -> Unprotected:
    """:func:`unprotect` in a worker thread."""
    return await asyncio.to_thread(unprotect, raw, keys)
