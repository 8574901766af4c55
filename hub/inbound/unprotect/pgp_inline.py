"""Find inline OpenPGP blocks (RFC 4880 sections 6.2 and 7) in the text of a MIME part.

A block counts only when its armor header line starts the line: a quoted block
(``> -----BEGIN PGP SIGNED MESSAGE-----``) is text someone quoted, not a signature. A
cleartext-signed block ends at the first ``-----END PGP SIGNATURE-----`` line; a nested,
dash-escaped block inside it (``- -----BEGIN ...``) stays inside (RFC 4880 section 7.1).
The text around a block is returned as segments of its own, so that it is never shown as part
of the protected text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BEGIN = re.compile(rb"^-----BEGIN PGP (MESSAGE|SIGNED MESSAGE)-----[ \t]*\r?$", re.MULTILINE)
_END = {
    b"MESSAGE": re.compile(rb"^-----END PGP MESSAGE-----[ \t]*(?:\r?\n|$)", re.MULTILINE),
    b"SIGNED MESSAGE": re.compile(rb"^-----END PGP SIGNATURE-----[ \t]*(?:\r?\n|$)", re.MULTILINE),
}


@dataclass(frozen=True)
class Segment:
    """A piece of a text part: plain text, or one armored block (``kind`` says which)."""

    #: ``"text"``, ``"message"`` (encrypted or signed OpenPGP message) or ``"signed"``
    #: (cleartext signature).
    kind: str
    data: bytes


def has_armor(data: bytes) -> bool:
    """True when ``data`` holds an unquoted armored OpenPGP message or signed block."""
    return _BEGIN.search(data) is not None


def split_armor(data: bytes) -> list[Segment]:
    """``data`` cut into text and armored blocks, in order; empty text is dropped."""
    segments: list[Segment] = []
    position = 0
    while True:
        begin = _BEGIN.search(data, position)
        if begin is None:
            break
        end = _END[begin.group(1)].search(data, begin.end())
        if end is None:
            break  # an unterminated block is only text
        if data[position : begin.start()].strip():
            segments.append(Segment("text", data[position : begin.start()]))
        kind = "message" if begin.group(1) == b"MESSAGE" else "signed"
        segments.append(Segment(kind, data[begin.start() : end.end()]))
        position = end.end()
    if data[position:].strip():
        segments.append(Segment("text", data[position:]))
    return segments
