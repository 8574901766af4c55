"""Installment schedules: an open balance split into dated parts, pure arithmetic.

The balance is split exactly: every part but the last is the agreed amount per installment (or
the balance divided by the count, rounded down to the currency's minor unit), and the last part
takes what remains, so the parts always sum to the balance. Monthly dates keep the start's day
of the month, or the month's last day when it is shorter (31 January, 28 February, 31 March).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from enum import StrEnum

from babel.numbers import get_currency_precision

from hub.errors import UserError

#: more parts than this is not a plan a collector would approve by mistake
MAX_INSTALLMENTS = 120


class Frequency(StrEnum):
    WEEKLY = "weekly"
    BIWEEKLY = "biweekly"
    MONTHLY = "monthly"


@dataclass(frozen=True)
class ScheduledInstallment:
    seq: int
    due_date: date
    amount: Decimal


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of ``currency`` (0.01 for EUR, 1 for JPY), from the CLDR data."""
    return Decimal(1).scaleb(-get_currency_precision(currency))


def in_minor_units(amount: Decimal, currency: str) -> Decimal:
    """``amount`` to the currency's minor unit: 100.0000 from PostgreSQL reads 100.00."""
    return amount.quantize(minor_unit(currency))


def add_months(start: date, months: int) -> date:
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return date(year, month, day)


def due_date(start: date, frequency: Frequency, index: int) -> date:
    """The date of part ``index`` (0 for the first)."""
    if frequency is Frequency.WEEKLY:
        return start + timedelta(weeks=index)
    if frequency is Frequency.BIWEEKLY:
        return start + timedelta(weeks=2 * index)
    return add_months(start, index)


def build_schedule(
    total: Decimal,
    *,
    count: int | None,
    amount: Decimal | None,
    frequency: Frequency,
    start: date,
    minor_unit: Decimal = Decimal("0.01"),
) -> list[ScheduledInstallment]:
    """Split ``total`` into parts; raises :class:`UserError` for terms that cannot work."""
    if total <= 0:
        raise UserError("nothing is open on this case: no plan is needed")
    if count is None and amount is None:
        raise UserError("a plan needs a number of installments or an amount per installment")
    if amount is not None:
        amount = amount.quantize(minor_unit, rounding=ROUND_DOWN)
        if amount <= 0:
            raise UserError("the amount per installment is too small")
    if count is None:
        assert amount is not None
        count = int((total / amount).to_integral_value(rounding=ROUND_UP))
    if count < 1 or count > MAX_INSTALLMENTS:
        raise UserError(f"a plan has between 1 and {MAX_INSTALLMENTS} installments")
    if amount is None:
        amount = (total / count).quantize(minor_unit, rounding=ROUND_DOWN)
        if amount <= 0:
            raise UserError("the balance is too small for that many installments")
    last = total - amount * (count - 1)
    if last <= 0:
        raise UserError(
            f"{count} installments of {amount} exceed the open balance {total}: fewer parts"
        )
    return [
        ScheduledInstallment(
            seq=index + 1,
            due_date=due_date(start, frequency, index),
            amount=amount if index < count - 1 else last,
        )
        for index in range(count)
    ]
