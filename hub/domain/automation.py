"""What a debtor's reply does to a case: the automation rules, pure and table-driven.

:func:`react` maps one classified reply (intent, fields, confidence, sender trust) to a
:class:`Reaction`: the rule that fired, the case event to apply (if any), the task a person
gets, and the side effects (a proposed plan, addresses opted out, a promise's terms). The
service :mod:`hub.services.automation` applies it in one transaction and records it on the
thread. No I/O here, so every rule has a unit test.

Gates come first: a low-confidence classification (a *suggestion*) or an unverified sender never
changes a case by itself; both only give a ``triage`` task. Auto-replies never reach this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from hub.domain.case_state import CaseEvent, CaseState


class Intent(StrEnum):
    DISPUTE = "dispute"
    PAYMENT_PROMISE = "payment_promise"
    INSTALLMENT_REQUEST = "installment_request"
    OTHER = "other"


class OtherSubtype(StrEnum):
    QUESTION = "question"
    INVOICE_COPY = "invoice_copy"
    CONTACT_CHANGE = "contact_change"
    HARDSHIP = "hardship"
    CEASE_CONTACT = "cease_contact"
    THANKS = "thanks"
    GDPR_REQUEST = "gdpr_request"
    OUT_OF_OFFICE = "out_of_office"
    UNRELATED = "unrelated"


class TaskKind(StrEnum):
    TRIAGE = "triage"
    REVIEW_DISPUTE = "review_dispute"
    ASK_PROMISE_DATE = "ask_promise_date"
    APPROVE_PLAN = "approve_plan"
    HARDSHIP = "hardship"
    CEASE_CONTACT = "cease_contact"
    CONTACT_CHANGE = "contact_change"
    ANSWER_QUESTION = "answer_question"
    SEND_INVOICE_COPY = "send_invoice_copy"
    GDPR_REQUEST = "gdpr_request"
    REVIEW_PAYMENT = "review_payment"
    REFUND_OVERPAYMENT = "refund_overpayment"


@dataclass(frozen=True)
class PromiseTerms:
    """What the debtor promised: ``amount`` None means the whole open balance."""

    due: date
    amount: Decimal | None
    currency: str | None


@dataclass(frozen=True)
class PlanTerms:
    """A plan as proposed (by the debtor) or changed (by a collector); None = not stated."""

    count: int | None = None
    amount_per_installment: Decimal | None = None
    frequency: str | None = None
    start_date: date | None = None


@dataclass(frozen=True)
class Reaction:
    """What to do about one reply; ``event`` None leaves the state alone."""

    rule: str
    why: str
    event: CaseEvent | None = None
    task: TaskKind | None = None
    promise: PromiseTerms | None = None
    plan: PlanTerms | None = None
    opt_out: bool = False


@dataclass(frozen=True)
class Decision:
    """One recorded automated decision: what the thread entry ``entry_id`` says."""

    rule: str
    intent: str
    from_state: CaseState
    to_state: CaseState
    why: str
    entry_id: int
    task_id: int | None = None
    plan_id: int | None = None
    opted_out: int = 0

    @property
    def changed_state(self) -> bool:
        return self.from_state != self.to_state


FREQUENCIES = ("weekly", "biweekly", "monthly")
#: thread entry kinds of automated decisions: the state moved, or it did not
STATE_KIND = "state_change"
DECISION_KIND = "decision"


def deadline(day: date, grace_days: int) -> datetime:
    """The moment a date plus its grace days has passed: midnight UTC after the last day."""
    return datetime.combine(day + timedelta(days=grace_days + 1), time(0), tzinfo=UTC)


def field_date(fields: Mapping[str, Any], key: str) -> date | None:
    value = fields.get(key)
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def field_amount(fields: Mapping[str, Any], key: str) -> Decimal | None:
    value = fields.get(key)
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount > 0 else None


def field_count(fields: Mapping[str, Any], key: str) -> int | None:
    value = fields.get(key)
    if isinstance(value, bool) or value is None:
        return None
    try:
        count = int(str(value).strip())
    except ValueError:
        return None
    return count if 1 < count <= 120 else None


def plan_terms(fields: Mapping[str, Any]) -> PlanTerms:
    frequency = fields.get("frequency")
    return PlanTerms(
        count=field_count(fields, "installments"),
        amount_per_installment=field_amount(fields, "amount_per_installment"),
        frequency=frequency if frequency in FREQUENCIES else None,
        start_date=field_date(fields, "start_date"),
    )


def _other(subtype: str | None) -> Reaction:
    match subtype:
        case OtherSubtype.CEASE_CONTACT:
            return Reaction(
                "cease_contact",
                "the debtor asked us to stop writing: every address opted out",
                task=TaskKind.CEASE_CONTACT,
                opt_out=True,
            )
        case OtherSubtype.HARDSHIP:
            return Reaction(
                "hardship",
                "the debtor says they cannot pay: dunning paused for a person to decide",
                event=CaseEvent.PUT_ON_HOLD,
                task=TaskKind.HARDSHIP,
            )
        case OtherSubtype.CONTACT_CHANGE:
            return Reaction(
                "contact_change",
                "the debtor gives new contact data: a person checks and adds it",
                task=TaskKind.CONTACT_CHANGE,
            )
        case OtherSubtype.QUESTION:
            return Reaction("question", "the debtor asks a question", task=TaskKind.ANSWER_QUESTION)
        case OtherSubtype.INVOICE_COPY:
            return Reaction(
                "invoice_copy", "the debtor asks for the invoice", task=TaskKind.SEND_INVOICE_COPY
            )
        case OtherSubtype.GDPR_REQUEST:
            return Reaction("gdpr_request", "a data protection request", task=TaskKind.GDPR_REQUEST)
        case OtherSubtype.OUT_OF_OFFICE:
            return Reaction("auto_reply", "an auto-reply is never acted on")
        case OtherSubtype.THANKS | OtherSubtype.UNRELATED:
            return Reaction(f"no_action_{subtype}", "nothing to do for this reply")
        case _:
            return Reaction(
                "other_unknown",
                f"an 'other' reply with subtype {subtype!r}: a person reads it",
                task=TaskKind.TRIAGE,
            )


def react(
    intent: str,
    fields: Mapping[str, Any],
    *,
    is_suggestion: bool,
    sender_verified: bool,
) -> Reaction:
    """The reaction to one classified reply (before checking the case's state table)."""
    if not sender_verified:
        return Reaction(
            "triage_unverified_sender",
            "the sender is not a verified address of the debtor: no automatic action",
            task=TaskKind.TRIAGE,
        )
    if is_suggestion:
        return Reaction(
            "triage_low_confidence",
            "the classification is only a suggestion (low confidence): no automatic action",
            task=TaskKind.TRIAGE,
        )
    match intent:
        case Intent.DISPUTE:
            reason = fields.get("reason") or "other"
            return Reaction(
                "dispute",
                f"the debtor disputes the claim (reason: {reason}): dunning paused",
                event=CaseEvent.DISPUTE_RECEIVED,
                task=TaskKind.REVIEW_DISPUTE,
            )
        case Intent.PAYMENT_PROMISE:
            due = field_date(fields, "date")
            if due is None:
                return Reaction(
                    "payment_promise_no_date",
                    "the debtor promises to pay but names no date: ask for one",
                    task=TaskKind.ASK_PROMISE_DATE,
                )
            currency = fields.get("currency")
            terms = PromiseTerms(
                due=due,
                amount=field_amount(fields, "amount"),
                currency=currency if isinstance(currency, str) and currency else None,
            )
            return Reaction(
                "payment_promise",
                f"the debtor promises to pay by {due.isoformat()}: dunning waits",
                event=CaseEvent.PROMISE_RECEIVED,
                promise=terms,
            )
        case Intent.INSTALLMENT_REQUEST:
            return Reaction(
                "installment_request",
                "the debtor asks to pay in installments: a plan awaits a collector's decision",
                event=CaseEvent.PLAN_REQUESTED,
                task=TaskKind.APPROVE_PLAN,
                plan=plan_terms(fields),
            )
        case Intent.OTHER:
            subtype = fields.get("subtype")
            return _other(subtype if isinstance(subtype, str) else None)
        case _:
            return Reaction(
                "unknown_intent",
                f"unknown intent {intent!r}: a person reads it",
                task=TaskKind.TRIAGE,
            )
