"""Promises with a controllable clock, and installment plans from approval to default or payment,
on both backends."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from automation_support import (
    NOW,
    case_row,
    entries,
    installments,
    make_case,
    make_creditor,
    meta_of,
    plans,
    tasks,
)

from hub.cli.worker_cmd import worker_loops
from hub.config import Settings
from hub.domain.automation import PlanTerms
from hub.domain.case_state import CaseState
from hub.domain.dunning import DEFAULT_POLICY, CaseDunningView, due_level, policy_from_settings
from hub.errors import UserError
from hub.services.automation import apply_intent
from hub.services.payments import record_payment
from hub.services.plans import (
    approve_plan,
    check_installments,
    installments_due,
    reject_plan,
)
from hub.services.promises import check_promises
from hub.services.promises_loop import promises_once
from hub.storage.db import Database

GRACE = 3


async def _promise(database: Database, case_id: int, fields: dict[str, object]) -> None:
    async with database.transaction() as session:
        await apply_intent(
            session,
            case_id,
            intent="payment_promise",
            fields=fields,
            confidence=0.95,
            is_suggestion=False,
            sender_verified=True,
            source_entry_id=None,
            now=NOW,
            policy=policy_from_settings({"promise_grace_days": GRACE}),
        )


async def _pay(
    database: Database, case_id: int, amount: str, ext: str, when: datetime = NOW
) -> None:
    async with database.transaction() as session:
        await record_payment(
            session,
            case_id=case_id,
            amount=Decimal(amount),
            currency="EUR",
            booked_at=when,
            source="api",
            external_id=ext,
            reference_text=None,
            actor="api:test",
            now=when,
        )


def _at(day: date, hour: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


async def test_promise_clock(database: Database) -> None:
    """Before the grace ends: nothing. After: broken, unless the promised money came."""
    creditor = await make_creditor(database, grace=GRACE)
    broken = await make_case(database, creditor, "B-1", amount="250.00")
    kept = await make_case(database, creditor, "K-1", amount="250.00")
    paid = await make_case(database, creditor, "F-1", amount="250.00")
    short = await make_case(database, creditor, "S-1", amount="250.00")
    promised = date(2026, 12, 12)
    await _promise(database, broken, {"date": promised.isoformat()})
    await _promise(database, kept, {"date": promised.isoformat(), "amount": 100})
    await _promise(database, paid, {"date": promised.isoformat()})
    await _promise(database, short, {"date": promised.isoformat(), "amount": 100})
    await _pay(database, kept, "100.00", "k-1", _at(promised))
    await _pay(database, paid, "250.00", "f-1", _at(promised))
    await _pay(database, short, "60.00", "s-1", _at(promised))
    assert (await case_row(database, paid)).state == CaseState.PAID.value

    # the promised day and the grace days: nothing happens
    for moment in (_at(promised, 12), _at(promised + timedelta(days=GRACE), 23)):
        summary = await check_promises(database, moment)
        assert summary.checked == 0, moment
        assert (await case_row(database, broken)).state == CaseState.PROMISED.value

    after = _at(promised + timedelta(days=GRACE + 1), 0)
    summary = await check_promises(database, after)
    assert (summary.broken, summary.kept) == (2, 1)
    for case_id, state, kind in (
        (broken, CaseState.REMINDED, "promise_broken"),
        (short, CaseState.REMINDED, "promise_broken"),
        (kept, CaseState.REMINDED, "promise_kept"),
    ):
        case = await case_row(database, case_id)
        assert case.state == state.value and case.paused_until is None
        last = (await entries(database, case_id))[-1]
        assert last.kind == kind
        meta = meta_of(last)
        assert (meta["from_state"], meta["to_state"]) == ("promised", "reminded")
        assert meta["promised_date"] == promised.isoformat()
        # dunning resumes: the next level is due again now that the pause is over
        view = CaseDunningView(
            CaseState(case.state), case.due_date, case.dunning_level, NOW, case.paused_until
        )
        assert due_level(view, DEFAULT_POLICY, after + timedelta(days=30)) is not None
    assert Decimal(meta_of((await entries(database, short))[-1])["paid_since_promise"]) == 60
    assert (await case_row(database, paid)).state == CaseState.PAID.value
    assert (await check_promises(database, after + timedelta(days=1))).checked == 0


async def _requested_plan(database: Database, reference: str, fields: dict[str, object]) -> int:
    creditor = await make_creditor(database, code=f"C{reference}", grace=GRACE)
    case_id = await make_case(database, creditor, reference, amount="300.00", fees="5.00")
    async with database.transaction() as session:
        [decision] = await apply_intent(
            session,
            case_id,
            intent="installment_request",
            fields=fields,
            confidence=0.9,
            is_suggestion=False,
            sender_verified=True,
            source_entry_id=None,
            now=NOW,
            policy=DEFAULT_POLICY,
        )
    assert decision.plan_id is not None
    return decision.plan_id


@pytest.mark.parametrize(
    ("frequency", "step"),
    [("monthly", None), ("biweekly", timedelta(weeks=2)), ("weekly", timedelta(weeks=1))],
)
async def test_plan_approved_then_missed_then_defaulted(
    database: Database, frequency: str, step: timedelta | None
) -> None:
    plan_id = await _requested_plan(
        database, "PL-1", {"installments": 3, "frequency": frequency, "start_date": "2027-01-15"}
    )
    async with database.transaction() as session:
        plan = await approve_plan(session, plan_id, "user:3", NOW)
    case_id = plan.case_id
    parts = await installments(database, plan_id)
    assert sum(p.amount for p in parts) == Decimal("305.00")  # claim plus fees
    assert [p.amount for p in parts] == [Decimal("101.66"), Decimal("101.66"), Decimal("101.68")]
    start = date(2027, 1, 15)
    expected = (
        [date(2027, 1, 15), date(2027, 2, 15), date(2027, 3, 15)]
        if step is None
        else [start + i * step for i in range(3)]
    )
    assert [p.due_date for p in parts] == expected
    case = await case_row(database, case_id)
    assert case.state == CaseState.PLAN_ACTIVE.value
    last = (await entries(database, case_id))[-1]
    assert meta_of(last)["rule"] == "plan_approved" and last.actor == "user:3"
    assert [t.status for t in await tasks(database, case_id)] == ["done"]

    # the first installment is paid in time, the second is not
    await _pay(database, case_id, "101.66", "p-1", _at(expected[0]))
    due = None
    async with database.sessions() as session:
        due = await installments_due(session, _at(expected[1]))
    assert [(d.seq, d.open_amount) for d in due] == [(2, Decimal("101.66"))]
    assert await check_installments(database, _at(expected[1] + timedelta(days=GRACE), 23)) == 0
    assert await check_installments(database, _at(expected[1] + timedelta(days=GRACE + 1))) == 1
    case = await case_row(database, case_id)
    assert case.state == CaseState.REMINDED.value
    [stored] = await plans(database, case_id)
    assert stored.status == "defaulted"
    assert [p.status for p in await installments(database, plan_id)] == ["paid", "missed", "open"]
    last = (await entries(database, case_id))[-1]
    assert last.kind == "plan_defaulted" and meta_of(last)["missed"][0]["seq"] == 2


async def test_plan_paid_in_full_closes_the_case(database: Database) -> None:
    plan_id = await _requested_plan(database, "PL-2", {"installments": 2})
    changes = PlanTerms(count=3, amount_per_installment=Decimal("100"), start_date=date(2027, 1, 1))
    async with database.transaction() as session:
        plan = await approve_plan(session, plan_id, "user:3", NOW, changes)
    assert (plan.count, plan.frequency) == (3, "monthly")
    parts = await installments(database, plan_id)
    assert [p.amount for p in parts] == [Decimal(100), Decimal(100), Decimal(105)]
    # one payment settles the oldest installments first, then the rest
    await _pay(database, plan.case_id, "150.00", "x-1")
    assert [(p.status, p.paid_amount) for p in await installments(database, plan_id)] == [
        ("paid", Decimal(100)),
        ("open", Decimal(50)),
        ("open", Decimal(0)),
    ]
    assert (await case_row(database, plan.case_id)).state == CaseState.PLAN_ACTIVE.value
    await _pay(database, plan.case_id, "155.00", "x-2")
    assert {p.status for p in await installments(database, plan_id)} == {"paid"}
    assert [p.status for p in await plans(database, plan.case_id)] == ["completed"]
    case = await case_row(database, plan.case_id)
    assert case.state == CaseState.PAID.value and case.paid_amount == Decimal("305.00")


async def test_plan_rejected_and_bad_terms(database: Database) -> None:
    plan_id = await _requested_plan(database, "PL-3", {"installments": 3})
    with pytest.raises(UserError, match="start date"):
        async with database.transaction() as session:
            await approve_plan(session, plan_id, "user:3", NOW)
    with pytest.raises(UserError, match="exceed"):
        async with database.transaction() as session:
            await approve_plan(
                session,
                plan_id,
                "user:3",
                NOW,
                PlanTerms(amount_per_installment=Decimal(200), start_date=date(2027, 1, 1)),
            )
    async with database.transaction() as session:
        plan = await reject_plan(session, plan_id, "user:3", NOW, "too long")
    assert plan.status == "rejected"
    case = await case_row(database, plan.case_id)
    assert case.state == CaseState.REMINDED.value
    assert await installments(database, plan_id) == []
    with pytest.raises(UserError, match="not awaiting"):
        async with database.transaction() as session:
            await approve_plan(session, plan_id, "user:3", NOW)


async def test_worker_pass_settles_an_old_promise(database: Database, settings: Settings) -> None:
    creditor = await make_creditor(database, grace=GRACE)
    case_id = await make_case(database, creditor, "W-1")
    await _promise(database, case_id, {"date": "2026-01-05"})  # long past by the real clock
    line = await promises_once(settings, database, "test-worker")
    assert line == "checked=1 broken=1 kept=0 plans_defaulted=0"
    assert (await case_row(database, case_id)).state == CaseState.REMINDED.value
    assert "promises" in [loop.name for loop in worker_loops()]
