"""A creditor's rules for installment plans a debtor proposes, and the check against them.

``creditor.settings["plans"]`` may set ``max_installments``, ``min_amount`` (per installment,
in the claim's currency), ``max_months`` (from the first to the last installment) and
``auto_accept``; anything not set takes the defaults below. A proposal within every limit is
accepted at once when ``auto_accept`` is on; otherwise, or when a limit is broken, it waits
for a collector. Pure: the schedule comes from :mod:`hub.domain.installments`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from hub.domain.installments import Frequency, ScheduledInstallment, add_months, build_schedule
from hub.errors import UserError

DEFAULT_MAX_INSTALLMENTS = 12
DEFAULT_MIN_AMOUNT = Decimal("25")
DEFAULT_MAX_MONTHS = 12


@dataclass(frozen=True)
class PlanRules:
    max_installments: int = DEFAULT_MAX_INSTALLMENTS
    min_amount: Decimal = DEFAULT_MIN_AMOUNT
    max_months: int = DEFAULT_MAX_MONTHS
    auto_accept: bool = False


@dataclass(frozen=True)
class PlanCheck:
    """The schedule a proposal gives and the rules it breaks (none: within the rules)."""

    schedule: tuple[ScheduledInstallment, ...]
    broken: tuple[str, ...]
    auto_accept: bool

    @property
    def within_rules(self) -> bool:
        return not self.broken

    @property
    def accept_now(self) -> bool:
        return self.auto_accept and self.within_rules


def _positive_int(raw: Mapping[str, Any], key: str, default: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"creditor plans.{key}: a positive whole number")
    return value


def rules_from_settings(raw: object) -> PlanRules:
    """The rules from ``creditor.settings["plans"]`` (None or missing keys: the defaults)."""
    if raw is None:
        return PlanRules()
    if not isinstance(raw, Mapping):
        raise UserError("creditor plans: a table of max_installments, min_amount, …")
    try:
        min_amount = Decimal(str(raw.get("min_amount", DEFAULT_MIN_AMOUNT)))
    except InvalidOperation:
        raise UserError("creditor plans.min_amount: a number") from None
    if not min_amount.is_finite() or min_amount < 0:
        raise UserError("creditor plans.min_amount: a number of 0 or more")
    auto = raw.get("auto_accept", False)
    if not isinstance(auto, bool):
        raise UserError("creditor plans.auto_accept: true or false")
    return PlanRules(
        max_installments=_positive_int(raw, "max_installments", DEFAULT_MAX_INSTALLMENTS),
        min_amount=min_amount,
        max_months=_positive_int(raw, "max_months", DEFAULT_MAX_MONTHS),
        auto_accept=auto,
    )


def check_plan(
    rules: PlanRules,
    *,
    balance: Decimal,
    count: int | None,
    amount: Decimal | None,
    frequency: Frequency,
    start: date,
    minor_unit: Decimal,
    today: date,
) -> PlanCheck:
    """Split ``balance`` as proposed and say which of the creditor's rules the result breaks."""
    schedule = tuple(
        build_schedule(
            balance,
            count=count,
            amount=amount,
            frequency=frequency,
            start=start,
            minor_unit=minor_unit,
        )
    )
    broken: list[str] = []
    if len(schedule) > rules.max_installments:
        broken.append("max_installments")
    # the last part takes the remainder and may be smaller: the agreed amount is the first
    if schedule[0].amount < rules.min_amount:
        broken.append("min_amount")
    if schedule[-1].due_date > add_months(today, rules.max_months):
        broken.append("max_months")
    if start < today:
        broken.append("start_in_past")
    return PlanCheck(schedule, tuple(broken), rules.auto_accept)
