"""What the inbound stages hand on: a parsed message, its addresses and attachments.

Frozen values, no I/O. :class:`ParsedMail` is what the parse stage makes of the raw bytes; a
message that could only be read in part carries the reasons in ``defects``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class MailAddress:
    name: str
    address: str


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str | None
    content_type: str
    #: ``attachment``, ``inline`` or None when the part had no Content-Disposition
    disposition: str | None
    content_id: str | None
    size: int
    sha256: str
    #: None when the attachment is over the size limit (its size and hash are still given)
    content: bytes | None


@dataclass(frozen=True)
class ParsedMail:
    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    subject: str
    date: datetime | None
    from_: MailAddress | None
    sender: MailAddress | None
    to: tuple[MailAddress, ...]
    cc: tuple[MailAddress, ...]
    reply_to: tuple[MailAddress, ...]
    #: every header field in order, the value decoded (encoded words) and unfolded
    headers: tuple[tuple[str, str], ...]
    #: all text/plain parts that are not attachments, decoded, joined
    text: str
    #: all text/html parts that are not attachments, decoded, joined (never rendered)
    html: str
    #: True when ``text`` was made from ``html`` because the message had no text part
    text_from_html: bool
    attachments: tuple[ParsedAttachment, ...]
    defects: tuple[str, ...]
    #: False when the bytes are not a mail message at all (no header field could be read)
    readable: bool = True

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    @property
    def auto_submitted(self) -> str | None:
        """RFC 3834 Auto-Submitted, lower-cased (``no`` when absent means a person sent it)."""
        value = self.header("Auto-Submitted")
        return value.strip().lower() if value is not None else None
