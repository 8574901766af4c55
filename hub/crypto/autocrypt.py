"""The Autocrypt header (Autocrypt Level 1, section 2.1) that offers the hub's key on every mail.

The value reads ``addr=<address>; prefer-encrypt=mutual; keydata=<base64 of a minimal binary
public key>``. The base64 text is broken into space-separated chunks so that the email package
can fold the header at those spaces without encoding it (folding whitespace inside ``keydata`` is
ignored by readers, section 2.1). Get the key bytes from
:meth:`hub.crypto.pgp.PgpKeystore.export_minimal_key`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from hub.errors import UserError

#: Length of the base64 chunks between folding points (a folded line stays within 78 octets).
CHUNK = 72
#: The first chunk shares its line with "keydata=": a word longer than the line would make the
#: email package encode the whole header as RFC 2047 encoded-words, which no reader expects.
FIRST_CHUNK = 60


@dataclass(frozen=True)
class AutocryptHeader:
    """A parsed Autocrypt header value."""

    addr: str
    keydata: bytes
    prefer_encrypt_mutual: bool


def autocrypt_header(addr: str, keydata: bytes, *, prefer_encrypt: bool = True) -> str:
    """The value of an ``Autocrypt:`` header for ``addr`` offering the binary key ``keydata``."""
    if not keydata:
        raise UserError("an Autocrypt header needs key data")
    if any(c in addr for c in " ;\t\r\n") or "@" not in addr:
        raise UserError("an Autocrypt header needs a plain email address")
    encoded = base64.b64encode(keydata).decode("ascii")
    chunks = [encoded[:FIRST_CHUNK]]
    chunks += [encoded[i : i + CHUNK] for i in range(FIRST_CHUNK, len(encoded), CHUNK)]
    folded = " ".join(chunk for chunk in chunks if chunk)
    parts = [f"addr={addr}"]
    if prefer_encrypt:
        parts.append("prefer-encrypt=mutual")
    parts.append(f"keydata={folded}")
    return "; ".join(parts)


def parse_autocrypt_header(value: str) -> AutocryptHeader:
    """Parse an Autocrypt header value (the inverse of :func:`autocrypt_header`).

    Raises :class:`~hub.errors.UserError` when ``addr`` or ``keydata`` is missing or broken, or
    when an unknown critical attribute (one not starting with ``_``) is present (section 2.1).
    """
    attributes: dict[str, str] = {}
    for item in value.split(";"):
        name, sep, content = item.strip().partition("=")
        if not sep:
            raise UserError("an Autocrypt attribute lacks '='")
        attributes[name.strip().lower()] = content.strip()
    unknown = set(attributes) - {"addr", "prefer-encrypt", "keydata"}
    if any(not name.startswith("_") for name in unknown):
        raise UserError("the Autocrypt header has an unknown critical attribute")
    if "addr" not in attributes or "keydata" not in attributes:
        raise UserError("the Autocrypt header lacks addr or keydata")
    try:
        keydata = base64.b64decode("".join(attributes["keydata"].split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UserError("the Autocrypt keydata is not valid base64") from exc
    return AutocryptHeader(
        addr=attributes["addr"],
        keydata=keydata,
        prefer_encrypt_mutual=attributes.get("prefer-encrypt") == "mutual",
    )
