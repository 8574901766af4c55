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

import codecs
import hashlib
import re
from datetime import datetime
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from hub.domain.inbound import MailAddress, ParsedAttachment, ParsedMail
from hub.inbound.html_text import html_to_text

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
    "x-unknown": "latin-1",
}


class _Reader:
    """Collects defects while reading one message."""

    def __init__(self) -> None:
        self.defects: list[str] = []

    def defect(self, text: str) -> None:
        if text not in self.defects:
            self.defects.append(text)

    def header_value(self, msg: Message, name: str, raw: Any) -> Any:
        """The parsed header object (default policy), or a decoded str when parsing fails."""
        try:
            value = msg.policy.header_fetch_parse(name, raw)
        except Exception as exc:
            self.defect(f"{name}: unreadable header ({type(exc).__name__})")
            return _decode_words(str(raw))
        for defect in getattr(value, "defects", ()):
            self.defect(f"{name}: {type(defect).__name__}")
        return value

    def decode(self, payload: bytes, charset: str | None, where: str) -> str:
        name = (charset or "us-ascii").strip().strip('"').lower()
        name = _CHARSET_ALIASES.get(name, name)
        try:
            codecs.lookup(name)
        except LookupError:
            self.defect(
                f"{where}: unknown charset {name[:40]!r}, decoded as UTF-8 with replacement"
            )
            return payload.decode("utf-8", errors="replace")
        try:
            return payload.decode(name)
        except UnicodeDecodeError:
            if name in ("us-ascii", "ascii"):
                # 8-bit text labelled ASCII is almost always UTF-8 or Latin-1
                try:
                    return payload.decode("utf-8")
                except UnicodeDecodeError:
                    return payload.decode("latin-1")
            self.defect(f"{where}: bytes not valid in {name}, decoded with replacement")
            return payload.decode(name, errors="replace")
        except Exception as exc:  # codecs such as utf-7 raise other errors on garbage
            self.defect(f"{where}: {name} decoding failed ({type(exc).__name__})")
            return payload.decode("utf-8", errors="replace")


def _decode_words(value: str) -> str:
    """Encoded words decoded the old way: a fallback for headers the new parser refuses."""
    try:
        return str(make_header(decode_header(value)))
    except Exception:
        return value


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


def _addresses(reader: _Reader, value: Any, name: str) -> tuple[MailAddress, ...]:
    found: list[MailAddress] = []
    addresses = getattr(value, "addresses", None)
    if addresses is not None:
        try:
            for item in addresses:
                if item.addr_spec and item.addr_spec != "<>":
                    found.append(
                        MailAddress(_unescape(item.display_name or ""), _unescape(item.addr_spec))
                    )
            return tuple(found)
        except Exception as exc:
            reader.defect(f"{name}: address list unreadable ({type(exc).__name__})")
    for display, address in getaddresses([str(value)]):
        if address:
            found.append(MailAddress(_decode_words(display), address))
    return tuple(found)


def _date(reader: _Reader, value: Any) -> datetime | None:
    when = getattr(value, "datetime", None)
    if isinstance(when, datetime):
        return when
    try:
        return parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        reader.defect("date: unparseable")
        return None


def _filename(reader: _Reader, part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception as exc:
        reader.defect(f"attachment: unreadable file name ({type(exc).__name__})")
        return None
    if name is None:
        return None
    name = _decode_words(_unfold(str(name)))
    return name or None


def _payload(reader: _Reader, part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception as exc:
        reader.defect(f"{part.get_content_type()}: undecodable body ({type(exc).__name__})")
        raw = part.get_payload()
        return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
    if isinstance(payload, bytes):
        return payload
    if part.get_content_type() == "message/rfc822" or part.is_multipart():
        try:
            return part.as_bytes(policy=policy.compat32)  # the attached message, as sent
        except Exception:
            return b""
    return b""


def _walk(
    reader: _Reader, msg: Message, max_attachment_bytes: int
) -> tuple[list[str], list[str], list[ParsedAttachment]]:
    texts: list[str] = []
    htmls: list[str] = []
    attachments: list[ParsedAttachment] = []
    for part in msg.walk():
        if part.get_content_maintype() == "multipart":
            continue
        for defect in part.defects:
            reader.defect(f"mime: {type(defect).__name__}")
        ctype = part.get_content_type()
        disposition = part.get_content_disposition()
        filename = _filename(reader, part)
        if (
            filename is None
            and disposition != "attachment"
            and ctype in ("text/plain", "text/html")
        ):
            body = reader.decode(_payload(reader, part), part.get_content_charset(), ctype)
            (texts if ctype == "text/plain" else htmls).append(body)
            continue
        if filename is None and disposition is None and ctype == "message/rfc822":
            continue  # walk() descends into it: its parts are read as parts of this message
        content = _payload(reader, part)
        too_big = len(content) > max_attachment_bytes
        if too_big:
            reader.defect(f"attachment over {max_attachment_bytes} bytes: content not kept")
        content_id = part.get("Content-ID")
        attachments.append(
            ParsedAttachment(
                filename=filename,
                content_type=ctype,
                disposition=disposition,
                content_id=str(content_id).strip() if content_id else None,
                size=len(content),
                sha256=hashlib.sha256(content).hexdigest(),
                content=None if too_big else content,
            )
        )
    return texts, htmls, attachments


def _parse(raw: bytes, max_attachment_bytes: int) -> ParsedMail:
    reader = _Reader()
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    for defect in msg.defects:
        reader.defect(f"message: {type(defect).__name__}")
    headers: list[tuple[str, str]] = []
    values: dict[str, Any] = {}
    for name, raw_value in msg.raw_items():
        value = reader.header_value(msg, name, raw_value)
        headers.append((name, _unescape(_unfold(str(value)))))
        values.setdefault(name.lower(), value)
    addresses = {
        name: _addresses(reader, values[name], name) if name in values else ()
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
