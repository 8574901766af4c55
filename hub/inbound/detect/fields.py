"""The "Name: value" field blocks of machine-readable reports.

RFC 3464 (delivery status), RFC 8098 (disposition notification) and RFC 5965 (feedback report)
all carry RFC 822-style field blocks separated by blank lines. The standard parser splits a
``message/delivery-status`` part into blocks itself, but reports also arrive as text parts and
with missing blank lines, so this module reads blocks from either form.
"""

from __future__ import annotations

import re
from email.message import Message

from hub.inbound.detect.mime import content_type, own_parts, payload_text

_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)[ \t]*:[ \t]*(.*)$")

Block = list[tuple[str, str]]


def parse_blocks(text: str, starts_block: frozenset[str] = frozenset()) -> list[Block]:
    """Field blocks from text: blank lines separate blocks, a field in ``starts_block`` that is
    already present also starts a new one (for reports that omit the blank line)."""
    blocks: list[Block] = []
    current: Block = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
                current = []
            continue
        if line[:1] in {" ", "\t"} and current:
            name, value = current[-1]
            current[-1] = (name, f"{value} {line.strip()}".strip())
            continue
        match = _FIELD.match(line)
        if not match:
            continue
        name = match.group(1).lower()
        if name in starts_block and any(n == name for n, _ in current):
            blocks.append(current)
            current = []
        current.append((name, match.group(2).strip()))
    if current:
        blocks.append(current)
    return blocks


def part_blocks(part: Message, starts_block: frozenset[str] = frozenset()) -> list[Block]:
    """The field blocks of a report part, parsed by the email package or not."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and all(isinstance(p, Message) for p in payload):
        text = "\n\n".join(
            "\n".join(f"{name}: {value}" for name, value in block.raw_items())
            for block in payload
            if isinstance(block, Message)
        )
        return parse_blocks(text, starts_block)
    return parse_blocks(payload_text(part), starts_block)


def first(block: Block, name: str) -> str:
    """The first value of field ``name`` in ``block`` ("" if absent)."""
    for field_name, value in block:
        if field_name == name:
            return value
    return ""


def typed_value(value: str) -> str:
    """The value of an RFC 3464 typed field (``rfc822; a@b`` -> ``a@b``, ``dns; host`` -> host)."""
    if ";" in value:
        kind, _, rest = value.partition(";")
        if re.fullmatch(r"[A-Za-z0-9-]+", kind.strip()):
            return rest.strip()
    return value.strip()


def parts_of_type(message: Message, *types: str) -> list[Message]:
    """The report's own parts of the given types (never those inside a returned copy)."""
    return [part for part in own_parts(message) if content_type(part) in types]
