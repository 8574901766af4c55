"""The parse stage: raw RFC 5322 / MIME bytes -> :class:`ParsedMail`, and never an exception.

The standard library's modern policy (``email.policy.default``) decodes encoded words (RFC 2047)
in headers and RFC 2231 file names, and parses address lists and dates; it costs about six times
``compat32`` (measured: see bench/imap_bench.py and the report), which is still far below
the cost of fetching and storing. Bodies are decoded here rather than with ``get_content()``,
which raises on an unknown charset: an unknown or broken charset is decoded with replacement
characters and noted as a defect. Each header is read on its own, so one broken header does not
hide the others. HTML-only mail gets a text made by :mod:`hub.inbound.html_text`.

Header values and charsets: :mod:`hub.inbound.parse_text`; address fields:
:mod:`hub.inbound.parse_addresses`; body texts and attachments: :mod:`hub.inbound.parse_parts`.
"""

from __future__ import annotations

import re
from datetime import datetime
from email import errors, policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from typing import Any

from hub.domain.inbound import ParsedMail
from hub.inbound.html_text import html_to_text
from hub.inbound.mime_leniency import quote_unquoted_boundaries
from hub.inbound.parse_addresses import read_addresses
from hub.inbound.parse_parts import walk_parts
from hub.inbound.parse_text import ADDRESS_HEADERS, MailReader, unescape, unfold

DEFAULT_MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
_MSGID = re.compile(r"<[^<>\s]*>")


def _date(reader: MailReader, value: Any) -> datetime | None:
    when = getattr(value, "datetime", None)
    if isinstance(when, datetime):
        return when
    try:
        return parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        reader.defect("date: unparseable")
        return None


def _lost_boundary(msg: Message) -> bool:
    return any(
        isinstance(defect, errors.StartBoundaryNotFoundDefect)
        for part in msg.walk()
        for defect in part.defects
    )


def _read(reader: MailReader, raw: bytes) -> EmailMessage:
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
    reader = MailReader()
    msg = _read(reader, raw)
    for defect in msg.defects:
        reader.defect(f"message: {type(defect).__name__}")
    headers: list[tuple[str, str]] = []
    values: dict[str, Any] = {}
    address_fields: dict[str, tuple[list[Any], list[str]]] = {}
    for name, raw_value in msg.raw_items():
        value = reader.header_value(msg, name, raw_value)
        headers.append((name, unescape(unfold(str(value)))))
        key = name.lower()
        values.setdefault(key, value)
        if key in ADDRESS_HEADERS:
            parsed, raws = address_fields.setdefault(key, ([], []))
            parsed.append(value)
            raws.append(str(raw_value))
    addresses = {
        name: read_addresses(reader, *address_fields[name], name) if name in address_fields else ()
        for name in ADDRESS_HEADERS
    }
    message_id = values.get("message-id")
    in_reply_to = _MSGID.findall(str(values.get("in-reply-to", "")))
    texts, htmls, attachments = walk_parts(reader, msg, max_attachment_bytes)
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
        subject=unescape(unfold(str(values.get("subject", "")))),
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
