"""The pure automation rules, table-driven: reply -> reaction, deadlines, schedules, way back."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from hub.domain.automation import TaskKind, deadline, plan_terms, react
from hub.domain.case_state import CaseEvent, CaseState
from hub.domain.installments import Frequency, build_schedule
from hub.errors import UserError
from hub.services.revert import way_back

E, T = CaseEvent, TaskKind

# intent, fields, suggestion, verified -> rule, event, task, opt_out
REACTIONS: list[tuple[str, dict[str, Any], bool, bool, str, CaseEvent | None, TaskKind | None]] = [
    (
        "dispute",
        {"reason": "already_paid"},
        False,
        True,
        "dispute",
        E.DISPUTE_RECEIVED,
        T.REVIEW_DISPUTE,
    ),
    (
        "payment_promise",
        {"date": "2026-12-12", "amount": 250},
        False,
        True,
        "payment_promise",
        E.PROMISE_RECEIVED,
        None,
    ),
    (
        "payment_promise",
        {"date": None, "amount": 100},
        False,
        True,
        "payment_promise_no_date",
        None,
        T.ASK_PROMISE_DATE,
    ),
    (
        "payment_promise",
        {"date": "next friday"},
        False,
        True,
        "payment_promise_no_date",
        None,
        T.ASK_PROMISE_DATE,
    ),
    (
        "installment_request",
        {"installments": 3},
        False,
        True,
        "installment_request",
        E.PLAN_REQUESTED,
        T.APPROVE_PLAN,
    ),
    ("other", {"subtype": "cease_contact"}, False, True, "cease_contact", None, T.CEASE_CONTACT),
    ("other", {"subtype": "hardship"}, False, True, "hardship", E.PUT_ON_HOLD, T.HARDSHIP),
    ("other", {"subtype": "contact_change"}, False, True, "contact_change", None, T.CONTACT_CHANGE),
    ("other", {"subtype": "question"}, False, True, "question", None, T.ANSWER_QUESTION),
    ("other", {"subtype": "invoice_copy"}, False, True, "invoice_copy", None, T.SEND_INVOICE_COPY),
    ("other", {"subtype": "gdpr_request"}, False, True, "gdpr_request", None, T.GDPR_REQUEST),
    ("other", {"subtype": "thanks"}, False, True, "no_action_thanks", None, None),
    ("other", {"subtype": "unrelated"}, False, True, "no_action_unrelated", None, None),
    ("other", {"subtype": "out_of_office"}, False, True, "auto_reply", None, None),
    ("other", {"subtype": "poetry"}, False, True, "other_unknown", None, T.TRIAGE),
    ("gibberish", {}, False, True, "unknown_intent", None, T.TRIAGE),
    # the gates: never an event, only triage, whatever the intent says
    ("dispute", {"reason": "not_owed"}, True, True, "triage_low_confidence", None, T.TRIAGE),
    (
        "payment_promise",
        {"date": "2026-12-12"},
        True,
        True,
        "triage_low_confidence",
        None,
        T.TRIAGE,
    ),
    ("other", {"subtype": "cease_contact"}, True, True, "triage_low_confidence", None, T.TRIAGE),
    ("dispute", {"reason": "not_owed"}, False, False, "triage_unverified_sender", None, T.TRIAGE),
    ("other", {"subtype": "hardship"}, False, False, "triage_unverified_sender", None, T.TRIAGE),
    ("installment_request", {}, True, False, "triage_unverified_sender", None, T.TRIAGE),
]


@pytest.mark.parametrize(
    ("intent", "fields", "suggestion", "verified", "rule", "event", "task"),
    REACTIONS,
    ids=[f"{r[0]}-{r[4]}-{i}" for i, r in enumerate(REACTIONS)],
)
def test_react(
    intent: str,
    fields: dict[str, Any],
    suggestion: bool,
    verified: bool,
    rule: str,
    event: CaseEvent | None,
    task: TaskKind | None,
) -> None:
    reaction = react(intent, fields, is_suggestion=suggestion, sender_verified=verified)
    assert reaction.rule == rule
    assert reaction.event is event
    assert reaction.task is task
    assert reaction.opt_out is (rule == "cease_contact")
    assert reaction.why


def test_promise_terms_are_read_from_the_fields() -> None:
    reaction = react(
        "payment_promise",
        {"date": "2026-12-12", "amount": "99.5", "currency": "EUR"},
        is_suggestion=False,
        sender_verified=True,
    )
    assert reaction.promise is not None
    assert reaction.promise.due == date(2026, 12, 12)
    assert reaction.promise.amount == Decimal("99.5")
    assert reaction.promise.currency == "EUR"
    full = react(
        "payment_promise", {"date": "2026-12-12"}, is_suggestion=False, sender_verified=True
    )
    assert full.promise is not None and full.promise.amount is None


@pytest.mark.parametrize(
    ("fields", "count", "amount", "frequency", "start"),
    [
        (
            {"installments": 3, "frequency": "monthly", "start_date": "2027-01-01"},
            3,
            None,
            "monthly",
            date(2027, 1, 1),
        ),
        ({"installments": "4", "amount_per_installment": 50.0}, 4, Decimal("50.0"), None, None),
        ({"installments": 1, "frequency": "daily", "start_date": "soon"}, None, None, None, None),
        ({"installments": True, "amount_per_installment": -5}, None, None, None, None),
    ],
)
def test_plan_terms(
    fields: dict[str, Any],
    count: int | None,
    amount: Decimal | None,
    frequency: str | None,
    start: date | None,
) -> None:
    terms = plan_terms(fields)
    assert (terms.count, terms.amount_per_installment) == (count, amount)
    assert (terms.frequency, terms.start_date) == (frequency, start)


def test_deadline_is_midnight_after_the_last_grace_day() -> None:
    assert deadline(date(2026, 12, 12), 3) == datetime(2026, 12, 16, tzinfo=UTC)
    assert deadline(date(2026, 12, 31), 0) == datetime(2027, 1, 1, tzinfo=UTC)


SCHEDULES = [
    # total, count, amount, frequency, start -> amounts, dates
    (
        "100.00",
        3,
        None,
        Frequency.MONTHLY,
        date(2027, 1, 31),
        ["33.33", "33.33", "33.34"],
        [date(2027, 1, 31), date(2027, 2, 28), date(2027, 3, 31)],
    ),
    (
        "250.00",
        None,
        "100",
        Frequency.WEEKLY,
        date(2026, 12, 7),
        ["100.00", "100.00", "50.00"],
        [date(2026, 12, 7), date(2026, 12, 14), date(2026, 12, 21)],
    ),
    (
        "250.00",
        2,
        "100",
        Frequency.BIWEEKLY,
        date(2026, 12, 7),
        ["100.00", "150.00"],
        [date(2026, 12, 7), date(2026, 12, 21)],
    ),
    (
        "1000",
        4,
        None,
        Frequency.MONTHLY,
        date(2026, 11, 30),
        ["250.00", "250.00", "250.00", "250.00"],
        [date(2026, 11, 30), date(2026, 12, 30), date(2027, 1, 30), date(2027, 2, 28)],
    ),
    (
        "10.01",
        2,
        None,
        Frequency.WEEKLY,
        date(2027, 1, 1),
        ["5.00", "5.01"],
        [date(2027, 1, 1), date(2027, 1, 8)],
    ),
]


@pytest.mark.parametrize(
    ("total", "count", "amount", "freq", "start", "amounts", "dates"), SCHEDULES
)
def test_schedule(
    total: str,
    count: int | None,
    amount: str | None,
    freq: Frequency,
    start: date,
    amounts: list[str],
    dates: list[date],
) -> None:
    parts = build_schedule(
        Decimal(total),
        count=count,
        amount=Decimal(amount) if amount else None,
        frequency=freq,
        start=start,
    )
    assert [p.amount for p in parts] == [Decimal(a) for a in amounts]
    assert [p.due_date for p in parts] == dates
    assert sum(p.amount for p in parts) == Decimal(total)
    assert [p.seq for p in parts] == list(range(1, len(parts) + 1))


def test_schedule_in_a_currency_without_minor_units() -> None:
    parts = build_schedule(
        Decimal("1000"),
        count=3,
        amount=None,
        frequency=Frequency.MONTHLY,
        start=date(2027, 1, 1),
        minor_unit=Decimal("1"),
    )
    assert [p.amount for p in parts] == [Decimal(333), Decimal(333), Decimal(334)]


@pytest.mark.parametrize(
    ("total", "count", "amount", "message"),
    [
        ("0", 3, None, "nothing is open"),
        ("100", None, None, "number of installments"),
        ("100", 3, "60", "exceed"),
        ("100", 500, None, "between 1 and"),
        ("0.02", 5, None, "too small"),
    ],
)
def test_impossible_schedules_are_refused(
    total: str, count: int | None, amount: str | None, message: str
) -> None:
    with pytest.raises(UserError, match=message):
        build_schedule(
            Decimal(total),
            count=count,
            amount=Decimal(amount) if amount else None,
            frequency=Frequency.WEEKLY,
            start=date(2027, 1, 1),
        )


@pytest.mark.parametrize(
    ("current", "wanted", "result"),
    [
        (CaseState.DISPUTED, CaseState.REMINDED, (CaseEvent.DISPUTE_REJECTED, CaseState.REMINDED)),
        (CaseState.PROMISED, CaseState.REMINDED, (CaseEvent.PROMISE_BROKEN, CaseState.REMINDED)),
        (CaseState.ON_HOLD, CaseState.REMINDED, (CaseEvent.RESUMED, CaseState.REMINDED)),
        (CaseState.DISPUTED, CaseState.OPEN, (CaseEvent.DISPUTE_REJECTED, CaseState.REMINDED)),
        (CaseState.REMINDED, CaseState.PROMISED, (CaseEvent.PROMISE_RECEIVED, CaseState.PROMISED)),
        (CaseState.CLOSED, CaseState.DISPUTED, (CaseEvent.REOPENED, CaseState.REMINDED)),
    ],
)
def test_way_back(
    current: CaseState, wanted: CaseState, result: tuple[CaseEvent, CaseState]
) -> None:
    assert way_back(current, wanted) == result


def test_every_state_a_decision_leads_to_has_a_way_back() -> None:
    # a revert never leaves a case stranded in a state automation put it in
    for state in (
        CaseState.DISPUTED,
        CaseState.PROMISED,
        CaseState.PLAN_REQUESTED,
        CaseState.PLAN_ACTIVE,
        CaseState.ON_HOLD,
    ):
        move = way_back(state, CaseState.OPEN)
        assert move is not None and move[1] is CaseState.REMINDED, state


def test_no_way_back_by_a_reminder_or_a_payment() -> None:
    assert way_back(CaseState.OPEN, CaseState.REMINDED) is None
    assert way_back(CaseState.PAID, CaseState.REMINDED) is None
