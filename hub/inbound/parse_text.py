"""Reading the text of a message as the parse stage does: header values, charsets, 8-bit bytes.

:class:`MailReader` collects the defects found while one message is read, reads each header on
its own (one broken header does not hide the others) and decodes bodies in their declared
charset, where an unknown or broken charset is decoded with replacement characters (or as UTF-8,
else Latin-1) and noted as a defect rather than raised. :func:`unfold` and :func:`unescape` turn
a raw header value into one line of text.
"""

from __future__ import annotations

import codecs
import re
from email.message import Message
from typing import Any

from hub.inbound.mime_leniency import decode_words

#: the address fields (RFC 5322 3.6.2, 3.6.3), read as address lists
ADDRESS_HEADERS = ("from", "sender", "to", "cc", "reply-to")
#: charsets that mail clients write but Python spells differently
_CHARSET_ALIASES = {
    "ks_c_5601-1987": "cp949",
    "x-sjis": "shift_jis",
    "unicode-1-1-utf-7": "utf-7",
    "iso-8859-8-i": "iso-8859-8",
    "windows-874": "cp874",
}


class MailReader:
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
            and name.lower() not in ADDRESS_HEADERS
            and any("\udc80" <= ch <= "\udcff" for ch in raw)
        ):
            self.defect(f"{name}: raw 8-bit bytes")
            return decode_words(unescape(unfold(raw)))
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


def unescape(value: str) -> str:
    """Raw 8-bit header bytes (RFC 6532 UTF-8, or a client's local charset) reach us as
    surrogate escapes: read them as UTF-8, else as Latin-1."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    raw = value.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]?", " ", value).strip() if "\n" in value else value.strip()
