"""Installment plans: a collector approves (possibly changed) or rejects a proposed plan; a
missed installment defaults the plan; the installments due, for the reminders.

Approval splits the case's open balance into a schedule (:mod:`hub.domain.installments`), moves
the case to ``plan_active`` and records it on the thread; a plan it replaces (a renegotiation)
is marked ``replaced``. :func:`check_installments` finds installments unpaid after their due date
plus the creditor's grace days: the installment is ``missed``, the plan ``defaulted``, the case
back to ``reminded`` so dunning resumes. Payments settle installments in
:mod:`hub.services.payments`. Approve and reject run in the caller's transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from hub.domain.automation import STATE_KIND, PlanTerms, TaskKind, deadline
from hub.domain.case_state import CaseEvent, CaseState, transition
from hub.domain.dunning import policy_from_settings
from hub.domain.installments import Frequency, build_schedule, in_minor_units, minor_unit
from hub.errors import NotFoundError, UserError
from hub.services.tasks import close_tasks
from hub.services.thread import append_entry, load_case, lock_case
from hub.storage.db import Database
from hub.storage.models import Case, Creditor
from hub.storage.models_cases import Installment, InstallmentPlan

log = logging.getLogger(__name__)

ACTOR = "system:plans"
DEFAULTED_KIND = "plan_defaulted"


def open_balance(case: Case) -> Decimal:
    return case.claim_amount + case.fees - case.paid_amount


async def _proposed(session: AsyncSession, plan_id: int) -> tuple[InstallmentPlan, Case]:
    case_id = await session.scalar(
        select(InstallmentPlan.case_id).where(InstallmentPlan.id == plan_id)
    )
    if case_id is None:
        raise NotFoundError(f"no installment plan {plan_id}")
    await lock_case(session, case_id)
    plan = await session.scalar(
        select(InstallmentPlan)
        .where(InstallmentPlan.id == plan_id)
        .execution_options(populate_existing=True)
    )
    assert plan is not None
    if plan.status != "proposed":
        raise UserError(f"plan {plan_id} is {plan.status}, not awaiting a decision")
    case = await load_case(session, case_id)
    if case.state != CaseState.PLAN_REQUESTED:
        raise UserError(f"the case is {case.state}: no plan can be decided now")
    return plan, case


async def approve_plan(
    session: AsyncSession,
    plan_id: int,
    collector: str,
    now: datetime,
    changes: PlanTerms | None = None,
) -> InstallmentPlan:
    """Approve a proposed plan, with the collector's ``changes`` to any of its terms."""
    plan, case = await _proposed(session, plan_id)
    changes = changes or PlanTerms()
    changed = {
        name: str(value)
        for name, value in vars(changes).items()
        if value is not None and value != getattr(plan, name, None)
    }
    count = changes.count or plan.count
    amount = changes.amount_per_installment or plan.amount_per_installment
    start = changes.start_date or plan.start_date
    raw_frequency = changes.frequency or plan.frequency or Frequency.MONTHLY.value
    try:
        frequency = Frequency(raw_frequency)
    except ValueError:
        raise UserError(f"unknown frequency {raw_frequency!r}") from None
    if start is None:
        raise UserError("the plan has no start date: give one")
    total = open_balance(case)
    schedule = build_schedule(
        total,
        count=count,
        amount=amount,
        frequency=frequency,
        start=start,
        minor_unit=minor_unit(case.currency),
    )
    replaced = (
        await session.scalars(
            select(InstallmentPlan).where(
                InstallmentPlan.case_id == case.id, InstallmentPlan.status == "approved"
            )
        )
    ).all()
    for old in replaced:
        old.status = "replaced"
    plan.status, plan.decided_by, plan.decided_at = "approved", collector, now
    plan.count, plan.frequency, plan.start_date = len(schedule), frequency.value, start
    plan.amount_per_installment = schedule[0].amount
    for part in schedule:
        session.add(
            Installment(
                plan_id=plan.id,
                seq=part.seq,
                due_date=part.due_date,
                amount=part.amount,
                paid_amount=Decimal("0"),
                status="open",
            )
        )
    state = CaseState(case.state)
    target = transition(state, CaseEvent.PLAN_APPROVED)
    case.state, case.paused_until = target.value, None
    await close_tasks(session, case.id, done_by=collector, now=now, kinds=[TaskKind.APPROVE_PLAN])
    entry = await append_entry(
        session,
        case.id,
        kind=STATE_KIND,
        actor=collector,
        now=now,
        meta={
            "rule": "plan_approved",
            "event": CaseEvent.PLAN_APPROVED.value,
            "from_state": state.value,
            "to_state": target.value,
            "why": "a collector approved the installment plan",
            "plan_id": plan.id,
            "installments": len(schedule),
            "frequency": frequency.value,
            "first_due": schedule[0].due_date.isoformat(),
            "last_due": schedule[-1].due_date.isoformat(),
            "total": str(in_minor_units(total, case.currency)),
            "currency": case.currency,
            "changes": changed,
            "replaced_plan_ids": [p.id for p in replaced],
        },
    )
    plan.meta = {**(plan.meta or {}), "approval_entry_id": entry.id}
    await session.flush()
    return plan


async def reject_plan(
    session: AsyncSession, plan_id: int, collector: str, now: datetime, reason: str = ""
) -> InstallmentPlan:
    """Reject a proposed plan: dunning resumes."""
    plan, case = await _proposed(session, plan_id)
    state = CaseState(case.state)
    target = transition(state, CaseEvent.PLAN_REJECTED)
    plan.status, plan.decided_by, plan.decided_at = "rejected", collector, now
    case.state = target.value
    await close_tasks(session, case.id, done_by=collector, now=now, kinds=[TaskKind.APPROVE_PLAN])
    await append_entry(
        session,
        case.id,
        kind=STATE_KIND,
        actor=collector,
        now=now,
        body=reason.strip()[:2000] or None,
        meta={
            "rule": "plan_rejected",
            "event": CaseEvent.PLAN_REJECTED.value,
            "from_state": state.value,
            "to_state": target.value,
            "why": "a collector rejected the installment plan",
            "plan_id": plan.id,
        },
    )
    await session.flush()
    return plan


@dataclass(frozen=True)
class InstallmentDue:
    case_id: int
    plan_id: int
    installment_id: int
    seq: int
    due_date: date
    amount: Decimal
    open_amount: Decimal


async def installments_due(
    session: AsyncSession, now: datetime, *, within_days: int = 0
) -> list[InstallmentDue]:
    """Open installments of active plans due by ``now`` (+ ``within_days``), oldest first."""
    until = now.date() + timedelta(days=within_days)
    rows = await session.execute(
        select(Installment, InstallmentPlan.case_id)
        .join(InstallmentPlan, InstallmentPlan.id == Installment.plan_id)
        .join(Case, Case.id == InstallmentPlan.case_id)
        .where(
            Installment.status == "open",
            Installment.due_date <= until,
            InstallmentPlan.status == "approved",
            Case.state == CaseState.PLAN_ACTIVE.value,
        )
        .order_by(Installment.due_date, Installment.id)
    )
    return [
        InstallmentDue(
            case_id=case_id,
            plan_id=part.plan_id,
            installment_id=part.id,
            seq=part.seq,
            due_date=part.due_date,
            amount=part.amount,
            open_amount=part.amount - part.paid_amount,
        )
        for part, case_id in rows.all()
    ]


async def _default(session: AsyncSession, case_id: int, now: datetime) -> bool:
    await lock_case(session, case_id)
    case = await load_case(session, case_id)
    if case.state != CaseState.PLAN_ACTIVE:
        return False
    settings = await session.scalar(
        select(Creditor.settings).where(Creditor.id == case.creditor_id)
    )
    grace = policy_from_settings((settings or {}).get("dunning")).promise_grace_days
    plan = await session.scalar(
        select(InstallmentPlan)
        .where(InstallmentPlan.case_id == case_id, InstallmentPlan.status == "approved")
        .options(selectinload(InstallmentPlan.installments))
        .execution_options(populate_existing=True)
    )
    if plan is None:
        return False
    missed = [
        part
        for part in plan.installments
        if part.status == "open" and deadline(part.due_date, grace) <= now
    ]
    if not missed:
        return False
    for part in missed:
        part.status = "missed"
    plan.status = "defaulted"
    target = transition(CaseState.PLAN_ACTIVE, CaseEvent.PLAN_DEFAULTED)
    case.state = target.value
    await append_entry(
        session,
        case.id,
        kind=DEFAULTED_KIND,
        actor=ACTOR,
        now=now,
        meta={
            "rule": "plan_defaulted",
            "event": CaseEvent.PLAN_DEFAULTED.value,
            "from_state": CaseState.PLAN_ACTIVE.value,
            "to_state": target.value,
            "why": f"installment {missed[0].seq} was not paid by its due date plus "
            f"{grace} days of grace",
            "plan_id": plan.id,
            "missed": [{"seq": p.seq, "due": p.due_date.isoformat()} for p in missed],
            "grace_days": grace,
        },
    )
    return True


async def check_installments(database: Database, now: datetime) -> int:
    """Default every active plan with an installment unpaid past its due date plus grace."""
    async with database.sessions() as session:
        ids = list(
            (
                await session.scalars(
                    select(InstallmentPlan.case_id)
                    .join(Installment, Installment.plan_id == InstallmentPlan.id)
                    .where(
                        InstallmentPlan.status == "approved",
                        Installment.status == "open",
                        Installment.due_date < now.date(),
                    )
                    .distinct()
                )
            ).all()
        )
    defaulted = 0
    for case_id in sorted(ids):
        async with database.transaction() as session:
            if await _default(session, case_id, now):
                defaulted += 1
                log.info("plans: case %s plan defaulted", case_id)
    return defaulted
