"""What the hub's answers to a debtor say: the answer kinds, their facts, and the template context.

Pure, validated value types, no I/O. An answer is mail that is not a reminder: the hub's own
confirmations and questions (``confirm_promise``, ``ask_promise_date``, ...) and a collector's
free text (``collector_reply``). :func:`answer_facts` checks the facts each kind needs and turns
them into typed values (dates, amounts) and back into JSON (:func:`facts_to_json`) for a draft
that waits for a collector's approval. :class:`AnswerContext` is everything an answer template
may use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from itertools import pairwise
from typing import Any

from hub.domain.mail import Language, valid_creditor_code
from hub.errors import UserError

#: the longest collector reply accepted (characters)
MAX_REPLY_CHARS = 20_000
FREQUENCIES = ("weekly", "biweekly", "monthly")


class AnswerKind(StrEnum):
    CONFIRM_PROMISE = "confirm_promise"
    ASK_PROMISE_DATE = "ask_promise_date"
    CONFIRM_PLAN_REQUEST = "confirm_plan_request"
    ASK_PLAN_AMOUNT = "ask_plan_amount"
    PLAN_APPROVED = "plan_approved"
    PLAN_REJECTED = "plan_rejected"
    ACKNOWLEDGE_DISPUTE = "acknowledge_dispute"
    ACKNOWLEDGE_CEASE_CONTACT = "acknowledge_cease_contact"
    COLLECTOR_REPLY = "collector_reply"

    @property
    def automatic(self) -> bool:
        """Written by the hub (capped, maybe approved) rather than by a collector."""
        return self is not AnswerKind.COLLECTOR_REPLY


def _date(kind: str, name: str, value: object, *, required: bool) -> date | None:
    if value is None or value == "":
        if required:
            raise UserError(f"{kind}: {name} is required")
        return None
    if isinstance(value, date):
        return value if type(value) is date else value.date()  # type: ignore[attr-defined]
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise UserError(f"{kind}: {name} must be a date (YYYY-MM-DD)")


def _amount(kind: str, name: str, value: object, *, required: bool) -> Decimal | None:
    if value is None or value == "":
        if required:
            raise UserError(f"{kind}: {name} is required")
        return None
    if isinstance(value, bool | float):
        raise UserError(f"{kind}: {name} must be a decimal amount (a string or Decimal)")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise UserError(f"{kind}: {name} must be a decimal amount") from None
    if not amount.is_finite() or amount <= 0:
        raise UserError(f"{kind}: {name} must be a positive amount")
    return amount.quantize(Decimal("0.01"))


def _count(kind: str, name: str, value: object, *, required: bool) -> int | None:
    if value is None or value == "":
        if required:
            raise UserError(f"{kind}: {name} is required")
        return None
    if isinstance(value, bool):
        raise UserError(f"{kind}: {name} must be a whole number")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise UserError(f"{kind}: {name} must be a whole number") from None
    if not 1 <= number <= 3650:
        raise UserError(f"{kind}: {name} is out of range")
    return number


def _frequency(kind: str, value: object) -> str | None:
    if value is None or value == "":
        return None
    if value not in FREQUENCIES:
        raise UserError(f"{kind}: frequency must be one of {', '.join(FREQUENCIES)}")
    return str(value)


@dataclass(frozen=True)
class Installment:
    due: date
    amount: Decimal


def _installments(kind: str, value: object) -> tuple[Installment, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise UserError(f"{kind}: installments must be a non-empty list of {{due, amount}}")
    out: list[Installment] = []
    for index, item in enumerate(value, start=1):
        if isinstance(item, Installment):
            out.append(item)
            continue
        if not isinstance(item, Mapping):
            raise UserError(f"{kind}: installment {index} must have a due date and an amount")
        due = _date(kind, f"installments[{index}].due", item.get("due"), required=True)
        amount = _amount(kind, f"installments[{index}].amount", item.get("amount"), required=True)
        assert due is not None and amount is not None
        out.append(Installment(due, amount))
    if any(b.due < a.due for a, b in pairwise(out)):
        raise UserError(f"{kind}: installments must be in date order")
    return tuple(out)


def answer_facts(kind: AnswerKind, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The checked, typed facts of one answer kind; :class:`UserError` names what is wrong.

    * ``confirm_promise``: ``due`` (date), ``amount`` (None: the whole balance)
    * ``ask_promise_date``: ``amount`` (optional)
    * ``confirm_plan_request``: ``count``, ``amount_per_installment``, ``frequency``,
      ``start_date`` (all optional: what the debtor proposed)
    * ``ask_plan_amount``: ``count``, ``frequency`` (optional: what was understood)
    * ``plan_approved``: ``installments`` (list of ``{due, amount}``), ``frequency`` (optional)
    * ``plan_rejected``: nothing
    * ``acknowledge_dispute``: ``review_days`` (whole days)
    * ``acknowledge_cease_contact``: nothing
    * ``collector_reply``: ``text`` (the collector's words, at most 20,000 characters)
    """
    k = kind.value
    if kind is AnswerKind.CONFIRM_PROMISE:
        return {
            "promise_date": _date(k, "due", raw.get("due"), required=True),
            "promise_amount": _amount(k, "amount", raw.get("amount"), required=False),
        }
    if kind is AnswerKind.ASK_PROMISE_DATE:
        return {"promise_amount": _amount(k, "amount", raw.get("amount"), required=False)}
    if kind is AnswerKind.CONFIRM_PLAN_REQUEST:
        return {
            "count": _count(k, "count", raw.get("count"), required=False),
            "amount_per_installment": _amount(
                k, "amount_per_installment", raw.get("amount_per_installment"), required=False
            ),
            "frequency": _frequency(k, raw.get("frequency")),
            "start_date": _date(k, "start_date", raw.get("start_date"), required=False),
        }
    if kind is AnswerKind.ASK_PLAN_AMOUNT:
        return {
            "count": _count(k, "count", raw.get("count"), required=False),
            "frequency": _frequency(k, raw.get("frequency")),
        }
    if kind is AnswerKind.PLAN_APPROVED:
        return {
            "installments": _installments(k, raw.get("installments")),
            "frequency": _frequency(k, raw.get("frequency")),
        }
    if kind is AnswerKind.ACKNOWLEDGE_DISPUTE:
        return {"review_days": _count(k, "review_days", raw.get("review_days"), required=True)}
    if kind is AnswerKind.COLLECTOR_REPLY:
        text = raw.get("text")
        if not isinstance(text, str) or not text.strip():
            raise UserError("collector_reply: the text is empty")
        if len(text) > MAX_REPLY_CHARS:
            raise UserError(
                f"collector_reply: the text is longer than {MAX_REPLY_CHARS} characters"
            )
        return {"text": text.replace("\r\n", "\n").strip("\n")}
    return {}  # plan_rejected, acknowledge_cease_contact


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Installment):
        return {"due": value.due.isoformat(), "amount": str(value.amount)}
    if isinstance(value, tuple | list):
        return [_json_value(v) for v in value]
    return value


#: stored name -> the name :func:`answer_facts` reads, where they differ
_STORED_AS = {"promise_date": "due", "promise_amount": "amount"}


def facts_to_json(facts: Mapping[str, Any]) -> dict[str, Any]:
    """Checked facts as JSON values that :func:`answer_facts` reads back to the same facts."""
    return {_STORED_AS.get(name, name): _json_value(value) for name, value in facts.items()}


@dataclass(frozen=True)
class AnswerContext:
    """Everything an answer template may use; the kind's facts come on top."""

    kind: AnswerKind
    language: Language
    creditor_code: str
    creditor_name: str
    creditor_legal_identity: str
    sender_name: str
    debtor_name: str
    reference: str
    currency: str
    #: what the debtor owes today (claim plus fees, less payments)
    balance: Decimal
    #: where to pay (stated in confirmations of promises and plans)
    iban: str
    bic: str | None
    portal_url: str
    reply_address: str
    opt_out_url: str
    #: ``Re: <the debtor's subject>`` when the answer answers a message whose subject is known
    reply_subject: str | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not valid_creditor_code(self.creditor_code):
            raise UserError("creditor_code: letters, digits, '-' and '_' only (at most 32)")
        for name in ("creditor_name", "sender_name", "debtor_name", "reference"):
            if not str(getattr(self, name)).strip():
                raise UserError(f"{name}: must not be empty in an answer")

    def template_vars(self) -> dict[str, object]:
        values: dict[str, object] = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name != "facts"
        }
        values["kind"] = self.kind.value
        values.update(self.facts)
        return values


def reply_subject(subject: str | None) -> str | None:
    """``Re: <subject>`` for the debtor's subject (one ``Re:``, however many prefixes it had)."""
    if not subject:
        return None
    text = " ".join(subject.split())
    while True:
        head, sep, rest = text.partition(":")
        if sep and head.strip().lower() in {"re", "aw", "sv", "antw"}:
            text = rest.strip()
            continue
        break
    return f"Re: {text}" if text else None
