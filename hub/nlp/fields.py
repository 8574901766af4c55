"""The fields of LABELS.md for one classified reply, each with the span of text it came from.

payment_promise: amount (null = the full claim), currency, date; installment_request: installments,
amount_per_installment, frequency, start_date; dispute: reason; other: subtype. The reason and the
subtype come from the detail model's scores; everything else from amounts.py, dates.py and plan.py.
The quoted reminder below a reply ("> ...", "On ... wrote:") is cut off first: its dates and amounts
are the collector's, not the debtor's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from hub.nlp.amounts import Amount, find_amounts
from hub.nlp.dates import DateMention, deadline, find_dates
from hub.nlp.plan import extract_plan

REASONS = (
    "already_paid",
    "not_received",
    "defective",
    "wrong_amount",
    "not_owed",
    "cancelled",
    "other",
)
SUBTYPES = (
    "question",
    "invoice_copy",
    "contact_change",
    "hardship",
    "cease_contact",
    "thanks",
    "gdpr_request",
    "out_of_office",
    "unrelated",
)
# Only the reply itself is searched for fields; long mails are cut (the model sees the same cut).
MAX_FIELD_CHARS = 5000

_QUOTE_START = re.compile(
    r"^\s*(?:>|-{2,}\s*(?:original message|ursprüngliche nachricht|oprindelig meddelelse)"
    r"|(?:on|am|den|d\.)\s.{4,80}(?:wrote|schrieb|skrev)\s*:?\s*$"
    r"|(?:from|von|fra)\s*:\s*\S)",
    re.IGNORECASE | re.MULTILINE,
)
_NOT_MONEY_AFTER = re.compile(
    r"^\s*(?:%|x\b|×|days?|tage?n?|dage?|weeks?|wochen?|uger?|months?|monate?n?|måneder?|minutes?|min\b|uhr"
    r"|o'clock|pm\b|h\b|kl\b|years?|jahre?n?|år\b|raten|rates|rater|payments?|instal|st\b|nd\b|rd\b|th\b"
    r"|zahlungen|betalinger|afdrag)",
    re.IGNORECASE,
)
_NOT_MONEY_BEFORE = re.compile(
    r"(?:\bkl\.?|\bum|\bat|\bnr\.?|\bno\.?|#|\btel\.?|\bphone|\bfon|\bref\.?|\bkunde|\bcustomer|\bd\.?|\bden"
    r"|\bthe|\bzum|\bam|\bbis|\btil|\bstr\.?|straße|strasse|vej|gade|road|street)\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Claim:
    amount: Decimal | None = None
    currency: str | None = None
    reference: str | None = None


def reply_part(text: str) -> str:
    """The debtor's own words: the text before the first quoted line or quote header."""
    text = text[:MAX_FIELD_CHARS]
    m = _QUOTE_START.search(text)
    if m and m.start() > 0:
        return text[: m.start()]
    return text


def _money(text: str, amounts: list[Amount], dates: list[DateMention]) -> list[Amount]:
    """Amounts that are money: not part of a date, a time, a count, a year or a phone number."""
    result = []
    for a in amounts:
        if any(d.start < a.end and a.start < d.end for d in dates):
            continue
        if a.currency is None:
            digits = re.sub(r"\D", "", a.text)
            if len(digits) > 7 or (
                a.value == a.value.to_integral_value() and 1900 <= a.value <= 2100
            ):
                continue
            if _NOT_MONEY_AFTER.match(text[a.end : a.end + 12]):
                continue
            if _NOT_MONEY_BEFORE.search(text[max(0, a.start - 10) : a.start]):
                continue
            if a.value < 5:
                continue
        result.append(a)
    return result


def _number(value: Decimal | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def _pick(scores: dict[str, float], prefix: str, labels: tuple[str, ...]) -> tuple[str, float]:
    best = max(labels, key=lambda label: scores.get(f"{prefix}{label}", 0.0))
    return best, scores.get(f"{prefix}{best}", 0.0)


def extract_fields(
    intent: str,
    text: str,
    lang: str,
    received: datetime,
    claim: Claim,
    detail_scores: dict[str, float],
) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """Fields for the intent, and for each field the [start, end) character span it came from."""
    if intent == "dispute":
        reason, _ = _pick(detail_scores, "reason:", REASONS)
        return {"reason": reason}, {}
    if intent == "other":
        subtype, _ = _pick(detail_scores, "subtype:", SUBTYPES)
        return {"subtype": subtype}, {}
    body = reply_part(text)
    dates = find_dates(body, received, lang)
    money = _money(body, find_amounts(body, lang), dates)
    spans: dict[str, list[int]] = {}
    if intent == "payment_promise":
        amount = next((a for a in money if a.currency), money[0] if money else None)
        when = deadline(dates)
        if amount is not None:
            spans["amount"] = [amount.start, amount.end]
        if when is not None:
            spans["date"] = [when.start, when.end]
        return {
            "amount": _number(amount.value) if amount else None,
            "currency": amount.currency if amount else None,
            "date": when.value.isoformat() if when else None,
        }, spans
    if intent == "installment_request":
        plan = extract_plan(body, lang, money, dates, claim.amount)
        spans = {name: [start, end] for name, (start, end) in plan.spans.items()}
        return {
            "installments": plan.installments,
            "amount_per_installment": _number(plan.amount_per_installment),
            "frequency": plan.frequency,
            "start_date": plan.start_date.isoformat() if plan.start_date else None,
        }, spans
    return {}, {}
