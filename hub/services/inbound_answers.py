"""Which answer the hub owes a debtor for one classified reply, and sending it.

:func:`answer_for` maps what the automation decided about a reply (its intent, the fields the
classifier found, the rule that fired) to one :class:`~hub.domain.answers.AnswerKind` and its
facts: a promise with a date is confirmed, one without a date is asked for it; an installment
request is confirmed (or its amount asked for); a dispute and a request to stop email contact
are acknowledged. A reply the automation refused to act on because the case's state cannot
take it (``*_not_allowed``) gets none: a person decides. Low confidence and unverified
senders still get a *call* to :func:`~hub.services.conversation.queue_answer`, whose guards
refuse it and record why on the case.

The pending answer is kept as JSON on the inbound message (:func:`pending_to_json`) until it
was handed to :func:`~hub.services.conversation.queue_answer`, which is idempotent: a crash
after the record step and before the answer is mended by the next pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.config import Settings
from hub.domain.answers import AnswerKind
from hub.domain.automation import Decision
from hub.services.answer_send import AnswerOutcome
from hub.services.conversation import queue_answer
from hub.services.reminder_mail import ReminderMailer
from hub.storage.db import Database

ACTOR = "system:conversation"

#: decision rules after which an answer is due (the rest: a person decides, or nothing to say)
_ANSWERED_RULES = frozenset(
    {
        "payment_promise",
        "payment_promise_no_date",
        "installment_request",
        "dispute",
        "cease_contact",
        # refused by the automation; queue_answer refuses too and records why
        "triage_low_confidence",
        "triage_unverified_sender",
    }
)


@dataclass(frozen=True)
class PendingAnswer:
    """An answer owed for one inbound message, with the flags the guards check."""

    case_id: int
    kind: AnswerKind
    facts: dict[str, Any]
    in_reply_to: str | None
    occasion: str
    inbound_kind: str
    sender_verified: bool
    is_suggestion: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "kind": self.kind.value,
            "facts": self.facts,
            "in_reply_to": self.in_reply_to,
            "occasion": self.occasion,
            "inbound_kind": self.inbound_kind,
            "sender_verified": self.sender_verified,
            "is_suggestion": self.is_suggestion,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PendingAnswer:
        return cls(
            case_id=int(data["case_id"]),
            kind=AnswerKind(data["kind"]),
            facts=dict(data.get("facts") or {}),
            in_reply_to=data.get("in_reply_to"),
            occasion=str(data["occasion"]),
            inbound_kind=str(data["inbound_kind"]),
            sender_verified=bool(data["sender_verified"]),
            is_suggestion=bool(data["is_suggestion"]),
        )


def _plain(value: Any) -> Any:
    return None if value is None else str(value) if not isinstance(value, int) else value


def answer_kind(intent: str, fields: Mapping[str, Any]) -> tuple[AnswerKind, dict[str, Any]] | None:
    """The answer a reply with ``intent`` and ``fields`` gets (before any guard), or None."""
    if intent == "payment_promise":
        if fields.get("date"):
            return AnswerKind.CONFIRM_PROMISE, {
                "due": fields["date"],
                "amount": _plain(fields.get("amount")),
            }
        return AnswerKind.ASK_PROMISE_DATE, {"amount": _plain(fields.get("amount"))}
    if intent == "installment_request":
        count = fields.get("installments")
        count = count if isinstance(count, int) and 1 < count <= 120 else None
        per = fields.get("amount_per_installment")
        frequency = fields.get("frequency")
        frequency = frequency if frequency in ("weekly", "biweekly", "monthly") else None
        if count is None and per is None:
            return AnswerKind.ASK_PLAN_AMOUNT, {"count": None, "frequency": frequency}
        return AnswerKind.CONFIRM_PLAN_REQUEST, {
            "count": count,
            "amount_per_installment": _plain(per),
            "frequency": frequency,
            "start_date": fields.get("start_date"),
        }
    if intent == "dispute":
        return AnswerKind.ACKNOWLEDGE_DISPUTE, {}
    if intent == "other" and fields.get("subtype") == "cease_contact":
        return AnswerKind.ACKNOWLEDGE_CEASE_CONTACT, {}
    return None


def answer_for(
    settings: Settings,
    *,
    case_id: int,
    intent: str,
    fields: Mapping[str, Any],
    decisions: list[Decision],
    inbound_id: int,
    message_id: str | None,
    sender_verified: bool,
    is_suggestion: bool,
) -> PendingAnswer | None:
    """The answer owed for one classified reply (see the module docstring), or None."""
    if not decisions or any(d.rule not in _ANSWERED_RULES for d in decisions):
        return None
    found = answer_kind(intent, fields)
    if found is None:
        return None
    kind, facts = found
    if kind is AnswerKind.ACKNOWLEDGE_DISPUTE:
        facts = {"review_days": settings.conversation.dispute_review_days}
    return PendingAnswer(
        case_id=case_id,
        kind=kind,
        facts=facts,
        in_reply_to=message_id,
        occasion=f"inbound:{inbound_id}",
        inbound_kind="reply",
        sender_verified=sender_verified,
        is_suggestion=is_suggestion,
    )


async def send_pending(
    database: Database,
    settings: Settings,
    mailer: ReminderMailer,
    pending: PendingAnswer,
    now: datetime,
) -> AnswerOutcome:
    """Hand the answer to :func:`queue_answer` (its own transaction; idempotent)."""
    return await queue_answer(
        database,
        settings,
        mailer,
        case_id=pending.case_id,
        kind=pending.kind,
        facts=pending.facts,
        in_reply_to=pending.in_reply_to,
        actor=ACTOR,
        now=now,
        inbound_kind=pending.inbound_kind,
        sender_verified=pending.sender_verified,
        is_suggestion=pending.is_suggestion,
        occasion=None if pending.in_reply_to else pending.occasion,
    )
