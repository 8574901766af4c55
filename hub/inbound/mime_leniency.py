"""Lenient readings of malformed mail that the standard library's modern parser gets wrong.

Each function repairs one kind of damage that real clients produce, and is used by
:mod:`hub.inbound.parse` only where the strict reading lost something:

* an unquoted multipart boundary containing ``=`` (``boundary=----=_Part_1``; RFC 2046 5.1.1
  wants it quoted, Outlook and Java mailers do not quote it): the modern parser stops at the
  ``=`` and finds no parts;
* an unquoted file name with spaces or an encoded word (``filename=This is a test.txt``,
  ``name==?utf-8?B?...?=``; RFC 2045 5.1 forbids both, RFC 2047 5 forbids the second);
* display names the modern address parser reads badly: adjacent encoded words split by
  spaces (RFC 2047 6.2 says the white space between them is not displayed), and the old
  ``address (Full Name)`` form whose name is a comment (RFC 822 A.1.2).
"""

from __future__ import annotations

import re
from email.header import decode_header, make_header
from email.utils import getaddresses

#: a boundary parameter whose value is not quoted (the value runs to ``;`` or white space)
_UNQUOTED_BOUNDARY = re.compile(rb"(;\s*boundary\s*=\s*)([^\"\s;]+)", re.IGNORECASE)
_SURROGATES = re.compile("[\udc80-\udcff]")


def decode_words(value: str) -> str:
    """Encoded words (RFC 2047) decoded the old way; adjacent words are joined without the
    white space between them. Text that is not an encoded word is kept as it is."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except Exception:
        return value


def quote_unquoted_boundaries(raw: bytes) -> bytes | None:
    """``raw`` with every unquoted ``boundary=`` value quoted, or None when there is none.

    Meant for a second reading of a message whose first reading found no start boundary: the
    substitution is not confined to header fields, so it is not applied to well-formed mail.
    """
    quoted, count = _UNQUOTED_BOUNDARY.subn(lambda m: m.group(1) + b'"' + m.group(2) + b'"', raw)
    return quoted if count else None


def unquoted_param(raw_header: str, param: str) -> str | None:
    """The value of ``param`` in a raw structured header when it is written unquoted and
    contains white space or an encoded word, read to the next ``;``; else None (the strict
    parser reads every other form correctly)."""
    match = re.search(
        rf"(?:^|;)\s*{re.escape(param)}\s*=\s*([^\";\s][^;]*)", raw_header, re.IGNORECASE
    )
    if match is None:
        return None
    value = " ".join(match.group(1).split())
    if " " not in value and "=?" not in value:
        return None
    return decode_words(value) or None


def legacy_names(raw_header: str) -> dict[str, str]:
    """Address (lower-cased) -> display name, as the traditional parser reads it: a comment
    after a bare address becomes the name and adjacent encoded words are joined."""
    names: dict[str, str] = {}
    try:
        pairs = getaddresses([raw_header])
    except Exception:
        return names
    for name, address in pairs:
        if name and address:
            names.setdefault(address.lower(), decode_words(name).strip())
    return names


def better_name(modern: str, address: str, raw_header: str, legacy: dict[str, str]) -> str:
    """The display name to keep: the modern parser's, unless it lost a comment name or split
    encoded words (then the traditional reading, which has the same letters)."""
    old = legacy.get(address.lower())
    if not old or old == modern or _SURROGATES.search(old):
        return modern
    if not modern:
        # RFC 822's "addr (Full Name)": only when the header really has that comment
        return old if f"({old})" in " ".join(raw_header.split()) else modern
    if "=?" in raw_header and "".join(old.split()) == "".join(modern.split()):
        return old
    return modern
