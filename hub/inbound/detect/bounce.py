"""Bounces in the standard form: RFC 3464 delivery status notifications.

A DSN is a ``multipart/report; report-type=delivery-status`` whose ``message/delivery-status``
part holds one per-message block (Reporting-MTA, ...) and one block per recipient
(Final-Recipient, Original-Recipient, Action, Status, Diagnostic-Code, Remote-MTA). Some servers
put the blocks in a text part or a ``multipart/mixed``; those are read too. A report whose every
recipient was delivered, relayed or expanded is a delivery report, not a bounce.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from hub.inbound.detect import reasons
from hub.inbound.detect.fields import (
    Block,
    first,
    parse_blocks,
    part_blocks,
    parts_of_type,
    typed_value,
)
from hub.inbound.detect.mime import (
    Headers,
    addresses,
    delivered_to,
    first_text,
    original_message_id,
    texts,
)
from hub.inbound.detect.result import Bounce, BouncedRecipient

STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")
_RECIPIENT_FIELDS = frozenset({"final-recipient", "original-recipient"})
_NOT_FAILED = frozenset({"delivered", "relayed", "expanded", "deliverable"})
_TEXT_DSN = re.compile(r"(?im)^(?:final|original)-recipient\s*:.+$")
_PERMANENT_WORDS = re.compile(r"\bpermanent(?:ly)?\b|\bfatal\b|\bhard\b", re.I)
_TEMPORARY_WORDS = re.compile(
    r"\btemporar|\bdelayed\b|\bwill (?:be )?(?:retr|tr)y|\bstill trying|\bdeferred\b", re.I
)


@dataclass(frozen=True)
class DsnResult:
    """What the RFC 3464 reader found: a bounce, a delivery report, or nothing usable."""

    bounce: Bounce | None
    delivered_only: bool
    why: str


def permanent_hint(text: str) -> bool | None:
    """Whether the report's words call the failure permanent (True), temporary (False), or
    neither (None)."""
    temporary = _TEMPORARY_WORDS.search(text)
    permanent = _PERMANENT_WORDS.search(text)
    if permanent and (not temporary or permanent.start() < temporary.start()):
        return True
    if temporary:
        return False
    return None


def make_recipient(
    *,
    address: str,
    action: str,
    status: str,
    diagnostic: str,
    remote_mta: str = "",
    original_recipient: str = "",
    hint: bool | None = None,
) -> BouncedRecipient:
    """One bounced recipient, with its status and reason completed from its diagnostic."""
    reply_code = reasons.find_reply_code(diagnostic)
    diagnostic = " ".join(diagnostic.split())[:2000]
    found_status = reasons.find_status(diagnostic)
    # A generic DSN status (5.0.0) yields to a specific one in the server's own words.
    if found_status and (not status or (status.endswith(".0.0") and found_status[0] == status[0])):
        status = found_status
    if not status and reply_code:
        status = reasons.status_from_reply(reply_code)
    reason = reasons.decide_reason(status, diagnostic)
    if action == "delayed" and reason == reasons.UNDEFINED:
        reason = "expired"
    if not status:
        if action == "delayed":
            hint = False
        status = reasons.default_status(reason, hint)
    if status.startswith("2") and action not in _NOT_FAILED:
        status = "5" + status[1:] if hint is not False else "4" + status[1:]
    permanent = status.startswith("5") if status else action == "failed" and hint is not False
    return BouncedRecipient(
        address=address,
        action=action or "failed",
        status=status,
        reply_code=reply_code,
        reason=reason,
        permanent=permanent,
        hard=reasons.is_hard(reason, status),
        diagnostic=diagnostic,
        remote_mta=remote_mta,
        original_recipient=original_recipient,
    )


def _blocks(message: Message) -> list[Block]:
    parts = parts_of_type(message, *STATUS_TYPES)
    blocks: list[Block] = []
    for part in parts:
        blocks.extend(part_blocks(part, _RECIPIENT_FIELDS))
    if not blocks:
        # Status blocks written into a text part (some MTAs, some gateways, broken MIME)
        for text in texts(message):
            start = _TEXT_DSN.search(text)
            if start is None:
                continue
            reporting = re.search(r"(?im)^Reporting-MTA\s*:.*$", text[: start.start()])
            body = text[reporting.start() if reporting else start.start() :]
            blocks.extend(parse_blocks(body, _RECIPIENT_FIELDS))
    return blocks


def _text_near(text: str, address: str) -> str:
    """The report's words about ``address`` (for a missing Diagnostic-Code): from its first
    mention to a blank line or a line that names another address."""
    index = text.lower().find(address)
    if index < 0:
        return ""
    lines = text[index : index + 800].splitlines()
    kept = lines[:1]
    for line in lines[1:]:
        others = [a for a in addresses(line) if a != address]
        if not line.strip() or (others and line.lstrip()[:1] in {"<", *others[0][:1]}):
            break
        kept.append(line)
    return "\n".join(kept)


def read_dsn(message: Message, headers: Headers) -> DsnResult:
    """Read an RFC 3464 report, if the message carries one."""
    blocks = _blocks(message)
    if not blocks:
        return DsnResult(None, False, "no message/delivery-status part")
    reporting_mta = ""
    recipients: list[BouncedRecipient] = []
    delivered = 0
    text = first_text(message)
    hint = permanent_hint(text)
    for block in blocks:
        final = typed_value(first(block, "final-recipient"))
        original = typed_value(first(block, "original-recipient"))
        if not final and not original:
            reporting_mta = reporting_mta or typed_value(first(block, "reporting-mta"))
            continue
        found = addresses(final) or addresses(original)
        if not found:
            continue
        action = first(block, "action").lower().split(" ")[0].strip()
        status_field = first(block, "status")
        if action in _NOT_FAILED or (not action and status_field.strip().startswith("2.")):
            delivered += 1
            continue
        status = reasons.find_status(status_field)
        diagnostic = typed_value(first(block, "diagnostic-code"))
        if not diagnostic:
            diagnostic = _text_near(text, found[0])
        recipients.append(
            make_recipient(
                address=found[0],
                action=action,
                status=status,
                diagnostic=diagnostic,
                remote_mta=typed_value(first(block, "remote-mta")),
                original_recipient=(addresses(original) or [""])[0],
                hint=hint,
            )
        )
    if not recipients:
        if delivered:
            return DsnResult(None, True, f"{delivered} recipient(s) delivered, none failed")
        return DsnResult(None, False, "delivery-status part without a recipient block")
    bounce = Bounce(
        recipients=tuple(recipients),
        format="rfc3464",
        original_message_id=original_message_id(message, text),
        envelope_to=delivered_to(headers),
        reporting_mta=reporting_mta,
    )
    return DsnResult(bounce, False, f"RFC 3464 report on {len(recipients)} recipient(s)")
