"""Tolerant, fast reading of the parts of a message that detection needs.

Detection must never crash on malformed mail and runs on every inbound message, so it reads
raw header values (``raw_items``: no structured header parsing, which is slow and raises on
some malformed values), decodes text parts with a replacement fallback for unknown or lying
charsets, and never descends into a returned copy (``message/rfc822``) when it looks for the
report's own words.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.header import decode_header, make_header
from email.message import Message

_FOLD = re.compile(r"\r?\n[ \t]+|\r(?!\n)[ \t]*")
_ANGLE_ID = re.compile(r"<([^<>\s]+@[^<>\s]+)>")
_BARE_ID = re.compile(r"^\s*([^<>\s@]+@[^<>\s]+)\s*$")
_QUOTED_MESSAGE_ID = re.compile(
    r"(?im)^[ \t>|]*Message-Id[ \t]*:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\s]+>)"
)
#: a plain mailbox address (no display name, no comments)
ADDRESS = re.compile(
    r"(?<![\w.+=!#$%&'*/?^`{|}~-])"
    r"([\w.+=!#$%&'*/?^`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+)"
)

#: the content types that hold a copy of the returned message
RETURNED_TYPES = frozenset({"message/rfc822", "text/rfc822-headers", "message/rfc822-headers"})
#: how much of one text part detection reads (bounce reports put their facts first)
MAX_TEXT = 64_000


class Headers:
    """A message's header fields by lower-case name, unfolded, undecoded, never parsed."""

    __slots__ = ("_fields",)

    def __init__(self, message: Message) -> None:
        fields: dict[str, list[str]] = {}
        try:
            items = message.raw_items()
        except Exception:  # a broken header block is read as empty, never raised
            items = iter(())
        for name, value in items:
            text = _unescape(value if isinstance(value, str) else str(value))
            fields.setdefault(name.strip().lower(), []).append(_FOLD.sub(" ", text).strip())
        self._fields = fields

    def get(self, name: str) -> str:
        """The first value of ``name`` ("" if absent)."""
        values = self._fields.get(name.lower())
        return values[0] if values else ""

    def get_all(self, name: str) -> list[str]:
        return list(self._fields.get(name.lower(), ()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._fields

    def decoded(self, name: str) -> str:
        """The first value of ``name`` with RFC 2047 encoded words decoded."""
        return decode_words(self.get(name))


def _unescape(value: str) -> str:
    """Raw 8-bit header bytes (kept by the parser as surrogate escapes) read as UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value


def decode_words(value: str) -> str:
    """``value`` with RFC 2047 encoded words decoded; the raw value if they are malformed."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # malformed encoded words: keep the raw text
        return value


def payload_text(part: Message, limit: int = MAX_TEXT) -> str:
    """The decoded text of a non-multipart part (at most ``limit`` characters)."""
    try:
        raw = part.get_payload(decode=True)
    except Exception:
        raw = None
    if not isinstance(raw, bytes):
        payload = part.get_payload()
        if isinstance(payload, str):
            return payload[:limit]
        if isinstance(payload, list):
            # a message/* part the parser split into header blocks (message/delivery-status)
            return "\n".join(block_text(p) for p in payload if isinstance(p, Message))[:limit]
        return ""
    raw = raw[: limit * 4]
    charset = _charset(part)
    try:
        return raw.decode(charset, errors="replace")[:limit]
    except LookupError:
        return raw.decode("utf-8", errors="replace")[:limit]


def _charset(part: Message) -> str:
    try:
        charset = part.get_content_charset() or "utf-8"
    except Exception:
        return "utf-8"
    charset = charset.strip().strip('"').lower()
    # Mail that says us-ascii often carries 8-bit text; UTF-8 is a safe superset to try.
    return "utf-8" if charset in {"us-ascii", "ascii", "unknown-8bit", "x-unknown"} else charset


def block_text(block: Message) -> str:
    """A header block (one part of a parsed message/delivery-status) back as text."""
    return "\n".join(f"{name}: {_FOLD.sub(' ', str(value))}" for name, value in block.raw_items())


_TYPE = re.compile(r"^\s*([a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+)", re.I)
_PARAM = re.compile(r";\s*([a-z0-9_.-]+)\s*=\s*(?:\"([^\"]*)\"|([^;\s]*))", re.I)


def _raw_content_type(part: Message) -> str:
    # The raw value, unparsed: the structured parse of the modern policy is the slowest step
    # of detection when it runs on every part for every rule.
    try:
        value = None
        for name, raw in part.raw_items():
            if name.lower() == "content-type":
                value = raw if isinstance(raw, str) else str(raw)
                break
    except Exception:
        return ""
    return _FOLD.sub(" ", value) if value else ""


def content_type(part: Message) -> str:
    """The part's media type, lower-case (text/plain when absent or invalid, RFC 2045, 5.2)."""
    match = _TYPE.match(_raw_content_type(part))
    if match:
        return match.group(1).lower()
    try:
        return part.get_default_type()
    except Exception:
        return "text/plain"


def param(part: Message, name: str) -> str:
    """A Content-Type parameter, lower-cased ("" if absent)."""
    for match in _PARAM.finditer(_raw_content_type(part)):
        if match.group(1).lower() == name:
            return (match.group(2) or match.group(3) or "").strip().lower()
    return ""


def own_parts(message: Message) -> Iterator[Message]:
    """The leaf parts of the message itself, not those inside a returned copy."""
    stack: list[Message] = [message]
    while stack:
        part = stack.pop()
        ctype = content_type(part)
        payload = part.get_payload()
        if ctype.startswith("multipart/") and isinstance(payload, list):
            stack.extend(reversed([p for p in payload if isinstance(p, Message)]))
        else:
            yield part


def texts(message: Message) -> list[str]:
    """The decoded text/* parts of the report itself, in order (HTML reduced to text)."""
    found: list[str] = []
    for part in own_parts(message):
        ctype = content_type(part)
        broken = ctype.startswith("multipart/") and isinstance(part.get_payload(), str)
        if broken or (ctype.startswith("text/") and ctype not in RETURNED_TYPES):
            text = payload_text(part)
            found.append(html_to_text(text) if ctype == "text/html" else text)
    return found


def first_text(message: Message) -> str:
    """The report's main words: its first plain part, else its first text part of any kind."""
    fallback = ""
    for part in own_parts(message):
        ctype = content_type(part)
        if ctype == "text/plain" or (
            ctype.startswith("multipart/") and isinstance(part.get_payload(), str)
        ):
            return payload_text(part)
        if not fallback and ctype == "text/html":
            fallback = html_to_text(payload_text(part))
    return fallback


_TAG = re.compile(r"<(?:script|style)\b.*?</(?:script|style)\s*>|<[^>]*>", re.S | re.I)
_BREAK = re.compile(r"<\s*(?:br|/p|/div|/tr|/li|/h\d)\b[^>]*>", re.I)
_ENTITIES = {"&nbsp;": " ", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#39;": "'", "&amp;": "&"}


def html_to_text(html: str) -> str:
    """Just enough HTML-to-text for pattern matching (no rendering, no remote content)."""
    text = _TAG.sub("", _BREAK.sub("\n", html))
    for entity, char in _ENTITIES.items():
        text = text.replace(entity, char)
    return text


def returned_headers(message: Message) -> Headers | None:
    """The header fields of the returned original, from message/rfc822 or text/rfc822-headers."""
    for part in own_parts(message):
        ctype = content_type(part)
        if ctype == "message/rfc822":
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                return Headers(inner)
        elif ctype in {"text/rfc822-headers", "message/rfc822-headers"}:
            from email.parser import HeaderParser

            return Headers(HeaderParser().parsestr(payload_text(part).lstrip()))
    return None


def normal_message_id(value: str) -> str | None:
    """``<id@domain>`` from a header value (first id in angle brackets, or a bare one)."""
    match = _ANGLE_ID.search(value)
    if match:
        return f"<{match.group(1)}>"
    match = _BARE_ID.match(value)
    return f"<{match.group(1)}>" if match else None


def original_message_id(message: Message, text: str) -> str | None:
    """The Message-ID of the returned original: from its copy, else from headers quoted in the
    report's text (never the report's own Message-ID)."""
    returned = returned_headers(message)
    if returned is not None:
        found = normal_message_id(returned.get("message-id"))
        if found:
            return found
    for candidate in [text, *texts(message)]:
        match = _QUOTED_MESSAGE_ID.search(candidate)
        if match:
            return normal_message_id(match.group(1))
    return None


def addresses(value: str) -> list[str]:
    """The plain addresses in a header value or a line of text, in order, lower-cased."""
    seen: list[str] = []
    for match in ADDRESS.finditer(value):
        address = match.group(1).strip(".").lower()
        if address not in seen:
            seen.append(address)
    return seen


def delivered_to(headers: Headers) -> tuple[str, ...]:
    """Where the message was delivered: X-Original-To, Delivered-To, Envelope-To, then To."""
    found: list[str] = []
    for name in ("x-original-to", "delivered-to", "envelope-to", "to"):
        for value in headers.get_all(name):
            for address in addresses(value):
                if address not in found:
                    found.append(address)
    return tuple(found)
