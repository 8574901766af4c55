"""The creditor's rules for plans proposed in the portal: defaults, settings, and the check."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from hub.domain.installments import Frequency
from hub.domain.plan_rules import PlanRules, check_plan, rules_from_settings
from hub.errors import UserError

TODAY = date(2026, 12, 2)


def _check(rules: PlanRules, **terms: object) -> tuple[str, ...]:
    values: dict[str, object] = {
        "balance": Decimal("300.00"),
        "count": 3,
        "amount": None,
        "frequency": Frequency.MONTHLY,
        "start": date(2026, 12, 15),
        "minor_unit": Decimal("0.01"),
        "today": TODAY,
    }
    values.update(terms)
    return check_plan(rules, **values).broken  # type: ignore[arg-type]


def test_defaults_and_settings() -> None:
    assert rules_from_settings(None) == PlanRules()
    assert not PlanRules().auto_accept  # a person decides unless the creditor says otherwise
    rules = rules_from_settings({"max_installments": 6, "min_amount": "20", "auto_accept": True})
    assert rules == PlanRules(6, Decimal("20"), 12, True)
    for bad in ({"max_installments": 0}, {"min_amount": "x"}, {"auto_accept": "yes"}, [1]):
        with pytest.raises(UserError):
            rules_from_settings(bad)


@pytest.mark.parametrize(
    ("terms", "broken"),
    [
        ({}, ()),
        ({"count": 13, "balance": Decimal("1300"), "start": TODAY}, ("max_installments",)),
        ({"count": 30, "balance": Decimal("3000")}, ("max_installments", "max_months")),
        ({"count": 12, "balance": Decimal("120")}, ("min_amount",)),
        ({"count": 3, "frequency": Frequency.WEEKLY, "start": date(2027, 12, 20)}, ("max_months",)),
        ({"start": date(2026, 12, 1)}, ("start_in_past",)),
    ],
)
def test_which_rules_a_proposal_breaks(terms: dict[str, object], broken: tuple[str, ...]) -> None:
    assert _check(PlanRules(), **terms) == broken


def test_only_auto_accept_within_the_rules_accepts_at_once() -> None:
    base = {
        "balance": Decimal("300"),
        "amount": None,
        "frequency": Frequency.MONTHLY,
        "start": date(2026, 12, 15),
        "minor_unit": Decimal("0.01"),
        "today": TODAY,
    }
    auto = PlanRules(auto_accept=True)
    assert check_plan(auto, count=3, **base).accept_now  # type: ignore[arg-type]
    assert not check_plan(auto, count=13, **base).accept_now  # type: ignore[arg-type]
    assert not check_plan(PlanRules(), count=3, **base).accept_now  # type: ignore[arg-type]
    schedule = check_plan(auto, count=3, **base).schedule  # type: ignore[arg-type]
    assert sum(p.amount for p in schedule) == Decimal("300")
