"""apply_intent and revert_decision on both backends: every intent -> decision, the gates,
illegal events, side effects (plans, opt-outs, tasks), and reverting each kind of decision."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from automation_support import (
    NOW,
    case_row,
    email_statuses,
    entries,
    make_case,
    make_creditor,
    meta_of,
    plans,
    tasks,
)

from hub.domain.automation import Decision
from hub.domain.case_state import CaseState
from hub.domain.dunning import DEFAULT_POLICY, DunningPolicy
from hub.errors import UserError
from hub.services.automation import apply_intent, revert_decision
from hub.storage.db import Database

S = CaseState


@dataclass(frozen=True)
class Row:
    intent: str
    fields: dict[str, Any]
    start: CaseState
    rule: str
    end: CaseState
    task: str | None
    confidence: float = 0.93
    suggestion: bool = False
    verified: bool = True
    emails_after: tuple[str, ...] = ("active", "active")
    extra: dict[str, Any] = field(default_factory=dict)


ROWS = [
    Row("dispute", {"reason": "already_paid"}, S.REMINDED, "dispute", S.DISPUTED, "review_dispute"),
    Row("dispute", {"reason": "defective"}, S.PROMISED, "dispute", S.DISPUTED, "review_dispute"),
    Row("dispute", {"reason": "not_owed"}, S.OPEN, "dispute", S.DISPUTED, "review_dispute"),
    Row("payment_promise", {"date": "2026-12-12", "amount": 100}, S.REMINDED,
        "payment_promise", S.PROMISED, None),
    Row("payment_promise", {"date": None, "amount": 100}, S.REMINDED,
        "payment_promise_no_date", S.REMINDED, "ask_promise_date"),
    Row("installment_request", {"installments": 3, "frequency": "monthly"}, S.REMINDED,
        "installment_request", S.PLAN_REQUESTED, "approve_plan"),
    Row("other", {"subtype": "cease_contact"}, S.REMINDED, "cease_contact", S.REMINDED,
        "cease_contact", emails_after=("opted_out", "opted_out")),
    Row("other", {"subtype": "hardship"}, S.REMINDED, "hardship", S.ON_HOLD, "hardship"),
    Row("other", {"subtype": "contact_change"}, S.REMINDED, "contact_change", S.REMINDED,
        "contact_change"),
    Row("other", {"subtype": "thanks"}, S.REMINDED, "no_action_thanks", S.REMINDED, None),
    # the gates: no state change, a triage task
    Row("dispute", {"reason": "not_owed"}, S.REMINDED, "triage_low_confidence", S.REMINDED,
        "triage", confidence=0.41, suggestion=True),
    Row("other", {"subtype": "cease_contact"}, S.REMINDED, "triage_low_confidence",
        S.REMINDED, "triage", confidence=0.3, suggestion=True),
    Row("payment_promise", {"date": "2026-12-12"}, S.REMINDED, "triage_unverified_sender",
        S.REMINDED, "triage", verified=False),
    Row("other", {"subtype": "hardship"}, S.REMINDED, "triage_unverified_sender", S.REMINDED,
        "triage", verified=False),
    # an event the case cannot take: triage, no change
    Row("payment_promise", {"date": "2026-12-12"}, S.PLAN_ACTIVE, "payment_promise_not_allowed",
        S.PLAN_ACTIVE, "triage"),
    Row("dispute", {"reason": "other"}, S.PAID, "dispute_not_allowed", S.PAID, "triage"),
    Row("other", {"subtype": "hardship"}, S.DISPUTED, "hardship_not_allowed", S.DISPUTED,
        "triage"),
]  # fmt: skip


async def _apply(
    database: Database, case_id: int, row: Row, policy: DunningPolicy = DEFAULT_POLICY
) -> list[Decision]:
    async with database.transaction() as session:
        return await apply_intent(
            session,
            case_id,
            intent=row.intent,
            fields=row.fields,
            confidence=row.confidence,
            is_suggestion=row.suggestion,
            sender_verified=row.verified,
            source_entry_id=None,
            actor="system:automation",
            now=NOW,
            policy=policy,
        )


async def test_every_intent_maps_to_its_decision(database: Database) -> None:
    creditor = await make_creditor(database)
    for index, row in enumerate(ROWS):
        label = f"row {index}: {row.intent} {row.fields} from {row.start}"
        case_id = await make_case(
            database,
            creditor,
            f"R-{index}",
            state=row.start,
            emails=(f"a{index}@example.org", f"b{index}@example.org"),
        )
        [decision] = await _apply(database, case_id, row)
        assert decision.rule == row.rule, label
        assert (decision.from_state, decision.to_state) == (row.start, row.end), label
        case = await case_row(database, case_id)
        assert case.state == row.end.value, label
        thread = await entries(database, case_id)
        entry = thread[-1]
        assert entry.id == decision.entry_id and entry.seq == len(thread), label
        assert entry.kind == ("state_change" if row.end != row.start else "decision"), label
        meta = meta_of(entry)
        assert meta["rule"] == row.rule and meta["intent"] == row.intent, label
        assert meta["confidence"] == row.confidence, label
        assert (meta["from_state"], meta["to_state"]) == (row.start.value, row.end.value), label
        assert meta["why"], label
        opened = await tasks(database, case_id)
        assert [t.kind for t in opened] == ([row.task] if row.task else []), label
        if row.task:
            assert opened[0].thread_entry_id == entry.id and opened[0].status == "open", label
            assert meta["task_ids"] == [opened[0].id], label
        assert tuple(await email_statuses(database, case_id)) == row.emails_after, label
        proposed = await plans(database, case_id)
        if row.rule == "installment_request":
            assert [(p.status, p.count, p.frequency) for p in proposed] == [
                ("proposed", 3, "monthly")
            ], label
            assert decision.plan_id == proposed[0].id, label
        else:
            assert proposed == [], label


async def test_a_promise_pauses_until_its_date_plus_the_grace(database: Database) -> None:
    creditor = await make_creditor(database)
    case_id = await make_case(database, creditor, "P-1")
    row = Row(
        "payment_promise",
        {"date": "2026-12-12", "amount": "120.50", "currency": "EUR"},
        S.REMINDED,
        "payment_promise",
        S.PROMISED,
        None,
    )
    await _apply(database, case_id, row, DunningPolicy(DEFAULT_POLICY.levels, promise_grace_days=5))
    case = await case_row(database, case_id)
    assert case.paused_until == datetime(2026, 12, 18, tzinfo=UTC)
    promise = meta_of((await entries(database, case_id))[-1])["promise"]
    assert Decimal(promise.pop("paid_before")) == 0
    assert promise == {
        "date": "2026-12-12",
        "amount": "120.50",
        "currency": "EUR",
        "grace_days": 5,
        "deadline": "2026-12-18T00:00:00+00:00",
    }


async def test_a_new_plan_request_replaces_the_one_awaiting_a_decision(database: Database) -> None:
    creditor = await make_creditor(database)
    case_id = await make_case(database, creditor, "PL-1")
    first = Row("installment_request", {"installments": 3}, S.REMINDED, "", S.PLAN_REQUESTED, "")
    second = Row(
        "installment_request", {"installments": 5}, S.PLAN_REQUESTED, "", S.PLAN_REQUESTED, ""
    )
    await _apply(database, case_id, first)
    [decision] = await _apply(database, case_id, second)
    assert decision.rule == "installment_request"
    assert [(p.status, p.count) for p in await plans(database, case_id)] == [
        ("replaced", 3),
        ("proposed", 5),
    ]


@pytest.mark.parametrize(
    ("row", "back_to"),
    [
        (Row("dispute", {"reason": "other"}, S.REMINDED, "dispute", S.DISPUTED, ""), S.REMINDED),
        (Row("dispute", {"reason": "other"}, S.OPEN, "dispute", S.DISPUTED, ""), S.REMINDED),
        (Row("payment_promise", {"date": "2026-12-12"}, S.REMINDED, "", S.PROMISED, ""),
         S.REMINDED),
        (Row("installment_request", {"installments": 2}, S.REMINDED, "", S.PLAN_REQUESTED, ""),
         S.REMINDED),
        (Row("other", {"subtype": "hardship"}, S.REMINDED, "", S.ON_HOLD, ""), S.REMINDED),
        (Row("other", {"subtype": "cease_contact"}, S.REMINDED, "", S.REMINDED, ""), S.REMINDED),
        # the table has no disputed -> promised: the nearest dunning state
        (Row("dispute", {"reason": "other"}, S.PROMISED, "dispute", S.DISPUTED, ""), S.REMINDED),
    ],
    ids=["dispute", "dispute-open", "promise", "plan", "hardship", "cease", "dispute-promised"],
)  # fmt: skip
async def test_revert(database: Database, row: Row, back_to: CaseState) -> None:
    creditor = await make_creditor(database)
    case_id = await make_case(database, creditor, "RV-1", state=row.start)
    before = await case_row(database, case_id)
    [decision] = await _apply(database, case_id, row)
    async with database.transaction() as session:
        undone = await revert_decision(session, decision.entry_id, "user:7")
    assert (undone.from_state, undone.to_state) == (row.end, back_to)
    case = await case_row(database, case_id)
    assert case.state == back_to.value
    assert case.paused_until == before.paused_until
    thread = await entries(database, case_id)
    original, revert = thread[-2], thread[-1]
    assert meta_of(original)["reverted_by"] == revert.id
    assert revert.actor == "user:7"
    meta = meta_of(revert)
    assert meta["rule"] == "revert" and meta["reverts_entry"] == decision.entry_id
    assert (meta["from_state"], meta["to_state"]) == (row.end.value, back_to.value)
    assert ("nearest dunning state" in meta["why"]) is (row.start not in (back_to, row.end))
    assert all(t.status == "done" and t.done_by == "user:7" for t in await tasks(database, case_id))
    assert set(await email_statuses(database, case_id)) == {"active"}
    assert all(p.status == "rejected" for p in await plans(database, case_id))
    with pytest.raises(UserError, match="reverted already"):
        async with database.transaction() as session:
            await revert_decision(session, decision.entry_id, "user:7")


async def test_revert_refuses_a_case_that_moved_on(database: Database) -> None:
    creditor = await make_creditor(database)
    case_id = await make_case(database, creditor, "RV-2")
    row = Row("other", {"subtype": "hardship"}, S.REMINDED, "", S.ON_HOLD, "")
    [hold] = await _apply(database, case_id, row)
    dispute = Row("dispute", {"reason": "other"}, S.ON_HOLD, "", S.DISPUTED, "")
    await _apply(database, case_id, dispute)
    with pytest.raises(UserError, match="moved on"):
        async with database.transaction() as session:
            await revert_decision(session, hold.entry_id, "user:7")
    assert (await case_row(database, case_id)).state == S.DISPUTED.value
    first_entry = (await entries(database, case_id))[0]
    with pytest.raises(UserError, match="no decision"):
        async with database.transaction() as session:
            await revert_decision(session, first_entry.id, "user:7")
