"""Recognise what is not a debtor's own reply: bounces, receipts, abuse reports, auto-replies.

:func:`detect` runs the rules in one fixed order (:data:`RULES`) and records each one's outcome
and reason, so a collector can see why a message was set aside. The order matters: reports in
a standard form first (feedback, read receipts, delivery status), then bounces written for
people, and auto-replies last, because many bounces carry ``Auto-Submitted: auto-replied``.
Pure functions: a parsed message in, a :class:`Detection` out; no network, no database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from email.message import Message

from hub.inbound.detect.amazon_ses import notification, ses_bounce, ses_complaint
from hub.inbound.detect.arf import read_feedback
from hub.inbound.detect.autoreply import read_auto_reply
from hub.inbound.detect.bounce import read_dsn
from hub.inbound.detect.bounce_formats import is_bounce, read_text_bounce, signals
from hub.inbound.detect.mdn import read_receipt
from hub.inbound.detect.mime import Headers, delivered_to, first_text
from hub.inbound.detect.result import (
    AutoReply,
    Bounce,
    BouncedRecipient,
    Detection,
    FeedbackReport,
    Kind,
    Outcome,
    ReadReceipt,
    RuleResult,
)

__all__ = [
    "RULES",
    "AutoReply",
    "Bounce",
    "BouncedRecipient",
    "Detection",
    "FeedbackReport",
    "Kind",
    "Outcome",
    "ReadReceipt",
    "RuleResult",
    "detect",
    "detect_bytes",
]


@dataclass
class _Work:
    """What the rules share while they run on one message."""

    message: Message
    headers: Headers
    text: str
    verdict: Detection | None = None


@dataclass(frozen=True)
class Rule:
    """One named step: it decides the kind (returns a Detection) or says why not."""

    name: str
    description: str
    check: Callable[[_Work], tuple[Outcome, str, Detection | None]]


def _feedback(work: _Work) -> tuple[Outcome, str, Detection | None]:
    report, why = read_feedback(work.message, work.headers)
    if report is None:
        return Outcome.MISS, why, None
    return Outcome.HIT, why, Detection(Kind.FEEDBACK_REPORT, (), feedback=report)


def _receipt(work: _Work) -> tuple[Outcome, str, Detection | None]:
    receipt, why = read_receipt(work.message)
    if receipt is None:
        return Outcome.MISS, why, None
    return Outcome.HIT, why, Detection(Kind.READ_RECEIPT, (), read_receipt=receipt)


def _dsn(work: _Work) -> tuple[Outcome, str, Detection | None]:
    result = read_dsn(work.message, work.headers)
    if result.bounce is not None:
        return Outcome.HIT, result.why, Detection(Kind.BOUNCE, (), bounce=result.bounce)
    if result.delivered_only:
        return Outcome.HIT, result.why, Detection(Kind.DELIVERY_REPORT, ())
    return Outcome.MISS, result.why, None


def _amazon_ses(work: _Work) -> tuple[Outcome, str, Detection | None]:
    value = notification(work.headers, work.text)
    if value is None:
        return Outcome.MISS, "no Amazon SES notification", None
    kind = str(value.get("notificationType", "")).lower()
    why = f"Amazon SES {kind} notification"
    if kind == "bounce":
        return Outcome.HIT, why, Detection(Kind.BOUNCE, (), bounce=ses_bounce(value, work.headers))
    if kind == "complaint":
        return Outcome.HIT, why, Detection(Kind.FEEDBACK_REPORT, (), feedback=ses_complaint(value))
    if kind == "delivery":
        return Outcome.HIT, why, Detection(Kind.DELIVERY_REPORT, ())
    return Outcome.WEAK, f"{why} of an unknown type", None


def _text_bounce(work: _Work) -> tuple[Outcome, str, Detection | None]:
    found = signals(work.headers, work.text)
    if not is_bounce(found):
        outcome = Outcome.WEAK if found.count() else Outcome.MISS
        return outcome, found.describe(), None
    bounce: Bounce = read_text_bounce(work.message, work.headers, found)
    why = f"{found.describe()}; {len(bounce.recipients)} failed recipient(s) found"
    return Outcome.HIT, why, Detection(Kind.BOUNCE, (), bounce=bounce)


def _auto_reply(work: _Work) -> tuple[Outcome, str, Detection | None]:
    verdict, weak, why = read_auto_reply(work.headers, work.text)
    if verdict is not None:
        return Outcome.HIT, why, Detection(Kind.AUTO_REPLY, (), auto_reply=verdict)
    if why.startswith("Auto-Submitted: no"):
        return Outcome.PERSON, why, None
    return (Outcome.WEAK if weak else Outcome.MISS), why, None


#: the rules in the order they run; the first hit decides
RULES: tuple[Rule, ...] = (
    Rule("feedback_report", "RFC 5965 ARF, provider complaints and opt-outs", _feedback),
    Rule("read_receipt", "RFC 8098 message disposition notification", _receipt),
    Rule("delivery_status", "RFC 3464 delivery status notification", _dsn),
    Rule("amazon_ses", "Amazon SES bounce, complaint and delivery notices (JSON)", _amazon_ses),
    Rule("bounce_text", "bounce written for people by a known or unknown server", _text_bounce),
    Rule("auto_reply", "RFC 3834 and vendor auto-replies, out-of-office in en/de/da", _auto_reply),
)


def detect(message: Message) -> Detection:
    """What the message is, and the outcome of every rule (skipped ones after the decision)."""
    headers = Headers(message)
    work = _Work(message=message, headers=headers, text=first_text(message))
    results: list[RuleResult] = []
    verdict: Detection | None = None
    for rule in RULES:
        if verdict is not None:
            results.append(RuleResult(rule.name, Outcome.SKIPPED, "decided by an earlier rule"))
            continue
        outcome, why, found = rule.check(work)
        results.append(RuleResult(rule.name, outcome, why))
        verdict = found
    envelope = delivered_to(headers)
    if verdict is None:
        return Detection(Kind.REPLY, tuple(results), envelope_to=envelope)
    return replace(verdict, rules=tuple(results), envelope_to=envelope)


def detect_bytes(raw: bytes) -> Detection:
    """:func:`detect` on raw message bytes (parsed with the modern policy)."""
    import email
    import email.policy

    return detect(email.message_from_bytes(raw, policy=email.policy.default))
