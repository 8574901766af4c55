"""What the later stages read of a message: its EFAIL-safe text, attachments and MIME view.

An encrypted message is read from its decrypted parts only (the unencrypted parts around the
ciphertext are attacker-controlled under EFAIL and are never mixed in); a signed message from
the parts the signature layer yielded (armor and signature parts removed); anything else from
the parse stage's reading, which handles charsets, HTML-only mail and RFC 2231 names.
:func:`detect_view` gives detection a MIME message to look at: the raw message, or for an
encrypted one the outer header fields over the decrypted parts.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from email.message import EmailMessage

from hub.domain.inbound import ParsedMail
from hub.inbound.html_text import html_to_text
from hub.inbound.unprotect import ProtectedPart, Unprotected
from hub.inbound.unprotect.mime_bytes import parse_entity

#: header fields that describe the outer body, dropped when the decrypted parts replace it
_BODY_FIELDS = re.compile(rb"^(content-[\w-]*|mime-version)\s*:", re.IGNORECASE)
_HEADER_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class AttachmentFacts:
    filename: str | None
    content_type: str
    size: int
    sha256: str


def _protected(unprotected: Unprotected) -> bool:
    return unprotected.encrypted or unprotected.signed


def readable_text(parsed: ParsedMail, unprotected: Unprotected | None) -> tuple[str, bool]:
    """The text a person reads and whether it was made from HTML (see the module docstring)."""
    if unprotected is not None and _protected(unprotected):
        text = unprotected.text_body()
        if text.strip() or unprotected.encrypted:
            if not text.strip():
                html = [
                    p.text()
                    for p in unprotected.parts
                    if p.encrypted and not p.is_attachment and p.content_type == "text/html"
                ]
                if html:
                    return html_to_text("\n".join(html)), True
            return text, False
    return parsed.text, parsed.text_from_html


def attachments(parsed: ParsedMail, unprotected: Unprotected | None) -> tuple[AttachmentFacts, ...]:
    """The attachments: of a protected message the ones inside its layers (decrypted only when
    it was encrypted), otherwise every attachment the parse stage found."""
    if unprotected is not None and _protected(unprotected):
        return tuple(
            AttachmentFacts(p.filename, p.content_type, p.size, p.sha256)
            for p in unprotected.attachments()
        )
    return tuple(
        AttachmentFacts(a.filename, a.content_type, a.size, a.sha256) for a in parsed.attachments
    )


def _part_bytes(part: ProtectedPart) -> bytes:
    head = f"Content-Type: {part.content_type}"
    if part.charset:
        head += f'; charset="{part.charset}"'
    head += "\r\nContent-Transfer-Encoding: base64\r\n"
    if part.is_attachment:
        name = (part.filename or "attachment").replace('"', "").replace("\r", "").replace("\n", "")
        head += f'Content-Disposition: attachment; filename="{name}"\r\n'
    body = base64.encodebytes(part.payload).replace(b"\n", b"\r\n")
    return head.encode("utf-8", "replace") + b"\r\n" + body


def detect_view(raw: bytes, unprotected: Unprotected | None) -> EmailMessage:
    """The message detection reads: for an encrypted message with decrypted parts, the outer
    header fields over a ``multipart/mixed`` of the decrypted parts; otherwise ``raw``."""
    decrypted = [] if unprotected is None else [p for p in unprotected.parts if p.encrypted]
    if unprotected is None or not unprotected.encrypted or not decrypted:
        return parse_entity(raw)
    end = _HEADER_END.search(raw)
    header_block = raw[: end.start()] if end else raw
    kept: list[bytes] = []
    for line in re.split(rb"\r?\n(?![ \t])", header_block):
        if line.strip() and not _BODY_FIELDS.match(line):
            kept.append(line)
    boundary = "hub-decrypted-" + base64.b32encode(raw[-10:].ljust(10, b"=")).decode().lower()
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + _part_bytes(p) for p in decrypted)
    head = b"\r\n".join(kept)
    head += b'\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="'
    head += boundary.encode() + b'"\r\n\r\n'
    return parse_entity(head + body + b"--" + boundary.encode() + b"--\r\n")
