"""Bytes-level MIME helpers for unprotecting: parse an entity, cut out signed bytes.

A ``multipart/signed`` signature covers the *bytes* of its first part as they were sent (RFC
1847 section 2.1, RFC 3156 section 5): :func:`signed_content` cuts them out of the raw layer
between the first two boundary delimiters and puts them in canonical CRLF form; they are never
re-serialised by the email package (which would refold headers and break the signature).
"""

from __future__ import annotations

import email.parser
import email.policy
import re
from email.message import EmailMessage


def parse_entity(data: bytes) -> EmailMessage:
    """A MIME entity from bytes, with the modern policy."""
    parsed = email.parser.BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(parsed, EmailMessage)
    return parsed


def signed_content(layer_raw: bytes, boundary: str) -> bytes | None:
    """The exact first body part of a ``multipart/signed`` whose boundary is ``boundary``,
    with CRLF line ends (the form that was signed), or None when it cannot be found."""
    mark = re.escape(b"--" + boundary.encode("utf-8", "replace"))
    first = re.search(rb"(?:\A|\n)" + mark + rb"[ \t]*\r?\n", layer_raw)
    if first is None:
        return None
    rest = layer_raw[first.end() :]
    second = re.search(rb"\r?\n" + mark + rb"(?:--)?[ \t]*(?:\r?\n|\Z)", rest)
    if second is None:
        return None
    return re.sub(rb"\r?\n", b"\r\n", rest[: second.start()])


def looks_like_pgp_message(data: bytes) -> bool:
    """True when ``data`` is an armored OpenPGP message or starts with a binary session-key
    packet."""
    if data.lstrip().startswith(b"-----BEGIN PGP MESSAGE-----"):
        return True
    if not data or not data[0] & 0x80:
        return False
    first = data[0]
    tag = first & 0x3F if first & 0x40 else (first >> 2) & 0x0F
    return tag in {1, 3}  # public-key or symmetric-key encrypted session key (RFC 4880 5.1/5.3)
