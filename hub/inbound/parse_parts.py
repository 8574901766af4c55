"""The parts of a message: its body texts and its attachments, read by walking the MIME tree.

Which part is an attachment (a named part, one marked ``attachment``, one with a Content-ID, a
forwarded message) and which is structure (a report part, another rendering of the body); file
names read leniently; a forwarded message kept as sent; an attachment over the size limit
recorded without its content.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import quopri
from email import policy
from email.message import Message

from hub.domain.inbound import ParsedAttachment
from hub.inbound.mime_leniency import decode_words, unquoted_param
from hub.inbound.parse_text import MailReader, unfold

#: parts of a report (RFC 6522) that the detect stage reads: structure, not attachments
_REPORT_TYPES = frozenset(
    {
        "message/delivery-status",
        "message/global-delivery-status",
        "message/disposition-notification",
        "message/global-disposition-notification",
        "message/feedback-report",
        "text/rfc822-headers",
        "message/rfc822-headers",
        "message/global-headers",
    }
)
#: other renderings of the body in a multipart/alternative (RFC 1896), not attachments
_BODY_RENDERINGS = frozenset({"text/plain", "text/html", "text/enriched", "text/richtext"})


def _raw_header(part: Message, name: str) -> str:
    for key, value in part.raw_items():
        if key.lower() == name:
            return unfold(str(value))
    return ""


def _filename(reader: MailReader, part: Message) -> str | None:
    """The file name: Content-Disposition filename, else Content-Type name (RFC 2231 and
    encoded words decoded); an unquoted name with spaces or encoded words is read whole."""
    try:
        name = part.get_filename()
    except Exception as exc:
        reader.defect(f"attachment: unreadable file name ({type(exc).__name__})")
        name = None
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        raw = _raw_header(part, header)
        lenient = unquoted_param(raw, param) if param in raw.lower() else None
        if lenient:
            reader.defect(f"attachment: unquoted {param} parameter")
            return lenient
        if name:
            break
    if name is None:
        return None
    name = decode_words(unfold(str(name)))
    return name or None


def _attached_message(reader: MailReader, part: Message) -> bytes:
    """A message/rfc822 part's message as sent (its own header and body); one that was
    base64 or quoted-printable encoded (RFC 2046 5.2.1 forbids it, clients do it) decoded."""
    inner = part.get_payload(0) if part.is_multipart() else None
    if not isinstance(inner, Message):
        return b""
    data = inner.as_bytes(policy=policy.compat32)
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    try:
        if encoding == "base64":
            return base64.b64decode(data)
        if encoding == "quoted-printable":
            return quopri.decodestring(data)
    except (binascii.Error, ValueError):
        reader.defect("message/rfc822: undecodable transfer encoding")
    return data


def _payload(reader: MailReader, part: Message) -> bytes:
    try:
        if part.get_content_type() == "message/rfc822":
            return _attached_message(reader, part)
        payload = part.get_payload(decode=True)
    except Exception as exc:
        reader.defect(f"{part.get_content_type()}: undecodable body ({type(exc).__name__})")
        raw = part.get_payload()
        return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
    if isinstance(payload, bytes):
        return payload
    if part.is_multipart():
        try:
            return part.as_bytes(policy=policy.compat32)
        except Exception:
            return b""
    return b""


def _is_attachment(
    ctype: str, disposition: str | None, filename: str | None, content_id: str | None
) -> bool:
    """What the sender attached: a named part, one marked ``attachment``, one with a
    Content-ID (RFC 2392: a resource in its own right, such as an inline image) or a forwarded
    message. A nameless report part or another rendering of the body is structure."""
    if filename or disposition == "attachment" or content_id or ctype == "message/rfc822":
        return True
    return ctype not in _REPORT_TYPES and ctype not in _BODY_RENDERINGS


def walk_parts(
    reader: MailReader, msg: Message, max_attachment_bytes: int
) -> tuple[list[str], list[str], list[ParsedAttachment]]:
    """The message's plain and HTML body texts, in order, and its attachments."""
    texts: list[str] = []
    htmls: list[str] = []
    attachments: list[ParsedAttachment] = []
    # walk() also descends into message/rfc822 parts: the text of a forwarded message is
    # read as text of this message, and the forwarded message is an attachment too
    for part in msg.walk():
        if part.get_content_maintype() == "multipart":
            continue
        for defect in part.defects:
            reader.defect(f"mime: {type(defect).__name__}")
        ctype = part.get_content_type()
        disposition = part.get_content_disposition()
        filename = _filename(reader, part)
        raw_id = part.get("Content-ID")
        content_id = str(raw_id).strip() or None if raw_id is not None else None
        if (
            filename is None
            and disposition != "attachment"
            and ctype in ("text/plain", "text/html")
        ):
            body = reader.decode(_payload(reader, part), part.get_content_charset(), ctype)
            (texts if ctype == "text/plain" else htmls).append(body)
        if not _is_attachment(ctype, disposition, filename, content_id):
            continue
        content = _payload(reader, part)
        too_big = len(content) > max_attachment_bytes
        if too_big:
            reader.defect(f"attachment over {max_attachment_bytes} bytes: content not kept")
        attachments.append(
            ParsedAttachment(
                filename=filename,
                content_type=ctype,
                disposition=disposition,
                content_id=content_id,
                size=len(content),
                sha256=hashlib.sha256(content).hexdigest(),
                content=None if too_big else content,
            )
        )
    return texts, htmls, attachments
