"""Apply what a debtor wrote to the case: one classified reply, one recorded decision.

:func:`apply_intent` runs inside the caller's transaction (the one that records the reply):
it locks the case, asks :func:`hub.domain.automation.react` what the reply means, checks the
event against the state table (an event the case cannot take becomes a triage task instead),
and writes the outcome: the new state, a promise's ``paused_until``, a proposed plan, opted-out
addresses, a task for a person, and always one thread entry (``state_change`` when the state
moved, ``decision`` when it did not) whose ``meta`` holds the rule, intent, confidence, both
states, why, and everything :func:`revert_decision` (:mod:`hub.services.revert`, re-exported
here) needs to undo it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.domain.automation import (
    DECISION_KIND,
    STATE_KIND,
    Decision,
    Reaction,
    TaskKind,
    deadline,
    react,
)
from hub.domain.case_state import CaseEvent, CaseState, transition
from hub.domain.dunning import DunningPolicy
from hub.errors import IllegalTransitionError
from hub.services.revert import revert_decision
from hub.services.tasks import open_task
from hub.services.thread import append_entry, load_case, lock_case
from hub.storage.models import Case, DebtorEmail
from hub.storage.models_cases import InstallmentPlan

__all__ = ["ACTOR", "apply_intent", "revert_decision"]

log = logging.getLogger(__name__)

ACTOR = "system:automation"
PROPOSED = "proposed"
REPLACED = "replaced"


def _checked(reaction: Reaction, state: CaseState) -> tuple[Reaction, CaseState]:
    """The reaction and the state it leads to; an illegal event turns into triage."""
    if reaction.event is None:
        return reaction, state
    if reaction.event is CaseEvent.PLAN_REQUESTED and state is CaseState.PLAN_REQUESTED:
        return reaction, state  # a new proposal replaces the one awaiting a decision
    try:
        return reaction, transition(state, reaction.event)
    except IllegalTransitionError:
        return (
            Reaction(
                rule=f"{reaction.rule}_not_allowed",
                why=f"a case in state {state.value} cannot take {reaction.event.value}: "
                "a person decides",
                task=TaskKind.TRIAGE,
            ),
            state,
        )


async def _propose_plan(
    session: AsyncSession, case: Case, reaction: Reaction, now: datetime
) -> tuple[InstallmentPlan, list[int]]:
    """A new proposed plan; an older one still awaiting a decision is replaced by it."""
    older = (
        await session.scalars(
            select(InstallmentPlan).where(
                InstallmentPlan.case_id == case.id, InstallmentPlan.status == PROPOSED
            )
        )
    ).all()
    for plan in older:
        plan.status = REPLACED
    terms = reaction.plan
    assert terms is not None
    plan = InstallmentPlan(
        case_id=case.id,
        status=PROPOSED,
        count=terms.count,
        amount_per_installment=terms.amount_per_installment,
        frequency=terms.frequency,
        start_date=terms.start_date,
        proposed_by="debtor",
        proposed_at=now,
        meta={},
    )
    session.add(plan)
    await session.flush()
    return plan, [p.id for p in older]


async def _opt_out(session: AsyncSession, debtor_id: int) -> list[int]:
    ids = list(
        (
            await session.scalars(
                select(DebtorEmail.id).where(
                    DebtorEmail.debtor_id == debtor_id, DebtorEmail.status == "active"
                )
            )
        ).all()
    )
    if ids:
        await session.execute(
            update(DebtorEmail)
            .where(DebtorEmail.id.in_(ids))
            .values(status="opted_out")
            .execution_options(synchronize_session=False)
        )
    return ids


async def apply_intent(
    session: AsyncSession,
    case_id: int,
    *,
    intent: str,
    fields: Mapping[str, Any],
    confidence: float,
    is_suggestion: bool,
    sender_verified: bool,
    source_entry_id: int | None,
    actor: str = ACTOR,
    now: datetime,
    policy: DunningPolicy,
) -> list[Decision]:
    """Decide and record what one classified reply does to its case (never an auto-reply)."""
    await lock_case(session, case_id)
    case = await load_case(session, case_id)
    state = CaseState(case.state)
    reaction, target = _checked(
        react(intent, fields, is_suggestion=is_suggestion, sender_verified=sender_verified),
        state,
    )
    meta: dict[str, Any] = {
        "rule": reaction.rule,
        "intent": intent,
        "confidence": round(float(confidence), 4),
        "from_state": state.value,
        "to_state": target.value,
        "why": reaction.why,
        "source_entry_id": source_entry_id,
        "sender_verified": sender_verified,
        "suggestion": is_suggestion,
        "paused_until_before": case.paused_until.isoformat() if case.paused_until else None,
    }
    if reaction.event is not None:
        meta["event"] = reaction.event.value
    subtype = fields.get("subtype")
    if isinstance(subtype, str):
        meta["subtype"] = subtype
    reason = fields.get("reason")
    if intent == "dispute" and isinstance(reason, str):
        meta["dispute_reason"] = reason[:32]

    plan: InstallmentPlan | None = None
    if reaction.promise is not None:
        until = deadline(reaction.promise.due, policy.promise_grace_days)
        case.paused_until = until
        meta["promise"] = {
            "date": reaction.promise.due.isoformat(),
            "amount": None if reaction.promise.amount is None else str(reaction.promise.amount),
            "currency": reaction.promise.currency,
            "grace_days": policy.promise_grace_days,
            "deadline": until.isoformat(),
            "paid_before": str(case.paid_amount),
        }
    if reaction.plan is not None:
        plan, replaced = await _propose_plan(session, case, reaction, now)
        meta["plan_id"] = plan.id
        if replaced:
            meta["replaced_plan_ids"] = replaced
    opted_out: list[int] = []
    if reaction.opt_out:
        opted_out = await _opt_out(session, case.debtor_id)
        meta["opted_out_email_ids"] = opted_out
    if target != state:
        case.state = target.value
    await session.flush()

    entry = await append_entry(
        session,
        case.id,
        kind=STATE_KIND if target != state else DECISION_KIND,
        actor=actor,
        now=now,
        meta=meta,
    )
    task_id: int | None = None
    if reaction.task is not None:
        task = await open_task(
            session, case.id, reaction.task.value, reason=reaction.why, entry_id=entry.id, now=now
        )
        task_id = task.id
        entry.meta = {**meta, "task_ids": [task.id]}
    if plan is not None:
        plan.meta = {"proposal_entry_id": entry.id, "debtor_fields": _plain(fields)}
    await session.flush()
    log.info(
        "automation: case %s rule %s (%s -> %s)", case.id, reaction.rule, state.value, target.value
    )
    return [
        Decision(
            rule=reaction.rule,
            intent=intent,
            from_state=state,
            to_state=target,
            why=reaction.why,
            entry_id=entry.id,
            task_id=task_id,
            plan_id=plan.id if plan else None,
            opted_out=len(opted_out),
        )
    ]


def _plain(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The plan fields as JSON-safe values (numbers and dates as text)."""
    keys = ("installments", "amount_per_installment", "frequency", "start_date")
    return {k: (None if fields.get(k) is None else str(fields.get(k))) for k in keys}
