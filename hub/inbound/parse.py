"""The parse stage: raw RFC 5322 / MIME bytes -> :class:`ParsedMail`, and never an exception.

The standard library's modern policy (``email.policy.default``) decodes encoded words (RFC 2047)
in headers and RFC 2231 file names, and parses address lists and dates; it costs about six times
``compat32`` (measured: see bench/imap_bench.py and the report), which is still far below
the cost of fetching and storing. Bodies are decoded here rather than with ``get_content()``,
which raises on an unknown charset: an unknown or broken charset is decoded with replacement
characters and noted as a defect. Each header is read on its own, so one broken header does not
hide the others. HTML-only mail gets a text made by :mod:`hub.inbound.html_text`.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import quopri
import re
from datetime import datetime
from email import errors, policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from hub.domain.inbound import MailAddress, ParsedAttachment, ParsedMail
from hub.inbound.html_text import html_to_text
from hub.inbound.mime_leniency import (
    better_name,
    decode_words,
    legacy_names,
    quote_unquoted_boundaries,
    unquoted_param,
)

DEFAULT_MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
_MSGID = re.compile(r"<[^<>\s]*>")
_ADDRESS_HEADERS = ("from", "sender", "to", "cc", "reply-to")
#: charsets that mail clients write but Python spells differently
_CHARSET_ALIASES = {
    "ks_c_5601-1987": "cp949",
    "x-sjis": "shift_jis",
    "unicode-1-1-utf-7": "utf-7",
    "iso-8859-8-i": "iso-8859-8",
    "windows-874": "cp874",
}
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


class _Reader:
    """Collects defects while reading one message."""

    def __init__(self) -> None:
        self.defects: list[str] = []

    def defect(self, text: str) -> None:
        if text not in self.defects:
            self.defects.append(text)

    def header_value(self, msg: Message, name: str, raw: Any) -> Any:
        """The parsed header object (default policy), or a decoded str when parsing fails.

        An unstructured header with raw 8-bit bytes is decoded here (UTF-8, else Latin-1): the
        modern parser would turn those bytes into replacement characters."""
        if (
            isinstance(raw, str)
            and name.lower() not in _ADDRESS_HEADERS
            and any("\udc80" <= ch <= "\udcff" for ch in raw)
        ):
            self.defect(f"{name}: raw 8-bit bytes")
            return decode_words(_unescape(_unfold(raw)))
        try:
            value = msg.policy.header_fetch_parse(name, raw)
        except Exception as exc:
            self.defect(f"{name}: unreadable header ({type(exc).__name__})")
            return decode_words(str(raw))
        for defect in getattr(value, "defects", ()):
            self.defect(f"{name}: {type(defect).__name__}")
        return value

    def decode(self, payload: bytes, charset: str | None, where: str) -> str:
        name = (charset or "us-ascii").strip().strip('"').lower()
        name = _CHARSET_ALIASES.get(name, name)
        try:
            codecs.lookup(name)
        except LookupError:
            self.defect(f"{where}: unknown charset {name[:40]!r}, decoded as UTF-8 or Latin-1")
            return _utf8_or_latin1(payload)
        try:
            return payload.decode(name)
        except UnicodeDecodeError:
            if name in ("us-ascii", "ascii"):
                # 8-bit text labelled ASCII is almost always UTF-8 or Latin-1
                return _utf8_or_latin1(payload)
            self.defect(f"{where}: bytes not valid in {name}, decoded with replacement")
            return payload.decode(name, errors="replace")
        except Exception as exc:  # codecs such as utf-7 raise other errors on garbage
            self.defect(f"{where}: {name} decoding failed ({type(exc).__name__})")
            return payload.decode("utf-8", errors="replace")


def _utf8_or_latin1(payload: bytes) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload.decode("latin-1")


def _unescape(value: str) -> str:
    """Raw 8-bit header bytes (RFC 6532 UTF-8, or a client's local charset) reach us as
    surrogate escapes: read them as UTF-8, else as Latin-1."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    raw = value.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]?", " ", value).strip() if "\n" in value else value.strip()


def _addresses(
    reader: _Reader, values: list[Any], raw_values: list[str], name: str
) -> tuple[MailAddress, ...]:
    """Every address of every ``name`` field: a duplicated To or Cc (RFC 5322 allows one) is
    read as one list rather than losing the second field."""
    found: list[MailAddress] = []
    for value, raw in zip(values, raw_values, strict=True):
        found.extend(_address_list(reader, value, _unfold(raw), name))
    return tuple(found)


def _address_list(reader: _Reader, value: Any, raw: str, name: str) -> list[MailAddress]:
    found: list[MailAddress] = []
    addresses = getattr(value, "addresses", None)
    if addresses is not None:
        try:
            legacy = legacy_names(raw) if "(" in raw or "=?" in raw else {}
            for item in addresses:
                if item.addr_spec and item.addr_spec != "<>":
                    address = _unescape(item.addr_spec)
                    display = _unescape(item.display_name or "")
                    if legacy:
                        display = better_name(display, address, raw, legacy)
                    found.append(MailAddress(display, address))
            if any(isinstance(d, errors.InvalidHeaderDefect) for d in value.defects):
                return _keep_every_address(found, raw)
            return found
        except Exception as exc:
            reader.defect(f"{name}: address list unreadable ({type(exc).__name__})")
    for display, address in getaddresses([str(value)]):
        if address:
            found.append(MailAddress(decode_words(display), address))
    return found


def _keep_every_address(found: list[MailAddress], raw: str) -> list[MailAddress]:
    """The modern parser drops what follows an invalid entry (``Mikel@Lindsaar <a@b.example>``
    lost ``a@b.example``): when the traditional reading has every address it found and more
    well-formed ones, that reading is kept (with the modern display names where they agree)."""
    try:
        pairs = [(name, address) for name, address in getaddresses([raw]) if address]
    except Exception:
        return found
    known = {a.address for a in found}
    extra = [a for _, a in pairs if a not in known]
    if not extra or not known <= {a for _, a in pairs}:
        return found
    if not all(re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", a) for a in extra):
        return found
    names = {a.address: a.name for a in found}
    return [MailAddress(names.get(a) or decode_words(n).strip(), a) for n, a in pairs]


def _date(reader: _Reader, value: Any) -> datetime | None:
    when = getattr(value, "datetime", None)
    if isinstance(when, datetime):
        return when
    try:
        return parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        reader.defect("date: unparseable")
        return None


def _raw_header(part: Message, name: str) -> str:
    for key, value in part.raw_items():
        if key.lower() == name:
            return _unfold(str(value))
    return ""


def _filename(reader: _Reader, part: Message) -> str | None:
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
    name = decode_words(_unfold(str(name)))
    return name or None


def _attached_message(reader: _Reader, part: Message) -> bytes:
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


def _payload(reader: _Reader, part: Message) -> bytes:
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


def _walk(
    reader: _Reader, msg: Message, max_attachment_bytes: int
) -> tuple[list[str], list[str], list[ParsedAttachment]]:
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


def _lost_boundary(msg: Message) -> bool:
    return any(
        isinstance(defect, errors.StartBoundaryNotFoundDefect)
        for part in msg.walk()
        for defect in part.defects
    )


def _read(reader: _Reader, raw: bytes) -> EmailMessage:
    """The parsed message; read a second time with its boundaries quoted when the first
    reading found no start boundary and an unquoted ``boundary=`` explains it."""
    parser = BytesParser(policy=policy.default)
    msg = parser.parsebytes(raw)
    if _lost_boundary(msg):
        quoted = quote_unquoted_boundaries(raw)
        if quoted is not None:
            second = parser.parsebytes(quoted)
            if not _lost_boundary(second):
                reader.defect("mime: unquoted boundary read whole")
                msg = second
    assert isinstance(msg, EmailMessage)
    return msg


def _parse(raw: bytes, max_attachment_bytes: int) -> ParsedMail:
    reader = _Reader()
    msg = _read(reader, raw)
    for defect in msg.defects:
        reader.defect(f"message: {type(defect).__name__}")
    headers: list[tuple[str, str]] = []
    values: dict[str, Any] = {}
    address_fields: dict[str, tuple[list[Any], list[str]]] = {}
    for name, raw_value in msg.raw_items():
        value = reader.header_value(msg, name, raw_value)
        headers.append((name, _unescape(_unfold(str(value)))))
        key = name.lower()
        values.setdefault(key, value)
        if key in _ADDRESS_HEADERS:
            parsed, raws = address_fields.setdefault(key, ([], []))
            parsed.append(value)
            raws.append(str(raw_value))
    addresses = {
        name: _addresses(reader, *address_fields[name], name) if name in address_fields else ()
        for name in _ADDRESS_HEADERS
    }
    message_id = values.get("message-id")
    in_reply_to = _MSGID.findall(str(values.get("in-reply-to", "")))
    texts, htmls, attachments = _walk(reader, msg, max_attachment_bytes)
    # parts are joined as they are: a part ends with its own line break when it has one
    text = "".join(texts)
    html = "".join(htmls)
    text_from_html = not texts and bool(html)
    if text_from_html:
        text = html_to_text(html)
    return ParsedMail(
        message_id=" ".join(str(message_id).split()) or None if message_id is not None else None,
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=tuple(_MSGID.findall(str(values.get("references", "")))),
        subject=_unescape(_unfold(str(values.get("subject", "")))),
        date=_date(reader, values["date"]) if "date" in values else None,
        from_=addresses["from"][0] if addresses["from"] else None,
        sender=addresses["sender"][0] if addresses["sender"] else None,
        to=addresses["to"],
        cc=addresses["cc"],
        reply_to=addresses["reply-to"],
        headers=tuple(headers),
        text=text,
        html=html,
        text_from_html=text_from_html,
        attachments=tuple(attachments),
        defects=tuple(reader.defects),
        readable=bool(headers),
    )


def parse_mail(
    raw: bytes, *, max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES
) -> ParsedMail:
    """Read ``raw`` as well as it can be read; problems are listed in ``defects``."""
    try:
        return _parse(raw, max_attachment_bytes)
    except Exception as exc:  # the parser must never take the hub down with it
        return ParsedMail(
            message_id=None,
            in_reply_to=None,
            references=(),
            subject="",
            date=None,
            from_=None,
            sender=None,
            to=(),
            cc=(),
            reply_to=(),
            headers=(),
            text="",
            html="",
            text_from_html=False,
            attachments=(),
            defects=(f"parser failed: {type(exc).__name__}",),
            readable=False,
        )
