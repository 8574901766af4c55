"""A collector undoes an automated decision: the case goes back, recorded as a new entry.

:func:`revert_decision` reads what the decision's thread entry recorded (both states, the
``paused_until`` before it, the tasks it opened, the plan it proposed, the addresses it opted
out) and undoes it. The state goes back through the transition table: by an event that leads
from the decision's ``to_state`` straight to its ``from_state``; where the table has none (``open``
is never re-entered, a plan request cannot become a promise again) the case goes to ``reminded``,
the nearest dunning state, and the entry says so. A case
that has moved on since (its state is no longer the decision's result) is refused, as is a
decision already reverted. Nothing is deleted: the original entry is marked ``reverted_by``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.domain.automation import DECISION_KIND, STATE_KIND, Decision
from hub.domain.case_state import TRANSITIONS, CaseEvent, CaseState
from hub.errors import NotFoundError, UserError
from hub.services.tasks import close_tasks
from hub.services.thread import append_entry, load_case, lock_case
from hub.storage.models import DebtorEmail, ThreadEntry, utcnow
from hub.storage.models_cases import InstallmentPlan

#: events that record something happening, never a collector's correction
_NOT_A_WAY_BACK = frozenset(
    {
        CaseEvent.REMINDER_SENT,
        CaseEvent.PARTIAL_PAYMENT,
        CaseEvent.PAID_IN_FULL,
        CaseEvent.PAYMENT_REVERSED,
    }
)
#: entries that record a money movement are corrected by a reversal, not reverted
NOT_REVERTIBLE_KINDS = frozenset({"payment"})


def way_back(current: CaseState, wanted: CaseState) -> tuple[CaseEvent, CaseState] | None:
    """The event that takes ``current`` to ``wanted``, else to ``reminded`` (the nearest dunning
    state: ``open`` is never re-entered), or None when the table has neither move."""
    targets = [wanted, CaseState.REMINDED]
    for target in targets:
        for event in CaseEvent:
            if event in _NOT_A_WAY_BACK or target is current:
                continue
            if TRANSITIONS.get((current, event)) is target:
                return event, target
    return None


async def revert_decision(
    session: AsyncSession, entry_id: int, collector: str, *, now: datetime | None = None
) -> Decision:
    """Undo the decision recorded by thread entry ``entry_id`` (the caller's transaction)."""
    now = now or utcnow()
    case_id = await session.scalar(select(ThreadEntry.case_id).where(ThreadEntry.id == entry_id))
    if case_id is None:
        raise NotFoundError(f"no thread entry {entry_id}")
    await lock_case(session, case_id)
    entry = await session.scalar(
        select(ThreadEntry)
        .where(ThreadEntry.id == entry_id)
        .execution_options(populate_existing=True)
    )
    assert entry is not None
    meta: dict[str, Any] = dict(entry.meta or {})
    if entry.kind in NOT_REVERTIBLE_KINDS or "from_state" not in meta or "rule" not in meta:
        raise UserError(f"thread entry {entry_id} records no decision that can be reverted")
    if meta.get("reverted_by") is not None:
        raise UserError(f"the decision {entry_id} was reverted already")
    case = await load_case(session, case_id)
    state = CaseState(case.state)
    was, became = CaseState(meta["from_state"]), CaseState(meta["to_state"])
    if state is not became:
        raise UserError(
            f"the case is {state.value} now, no longer {became.value}: "
            "it moved on since that decision, change it with a new event instead"
        )
    target, event = state, None
    if was is not became:
        move = way_back(state, was)
        if move is None:
            raise UserError(f"a case cannot go back from {state.value} to {was.value}")
        event, target = move
        case.state = target.value
    before = meta.get("paused_until_before")
    if "paused_until_before" in meta or meta.get("promise"):
        case.paused_until = datetime.fromisoformat(before) if before else None

    undone: dict[str, Any] = {}
    task_ids = [int(t) for t in meta.get("task_ids", [])]
    if task_ids:
        undone["tasks_closed"] = await close_tasks(
            session, case.id, done_by=collector, now=now, ids=task_ids
        )
    plan_id = meta.get("plan_id")
    if plan_id is not None:
        plan = await session.get(InstallmentPlan, int(plan_id))
        if plan is not None and plan.status == "proposed":
            plan.status, plan.decided_by, plan.decided_at = "rejected", collector, now
            undone["plan_rejected"] = plan.id
    email_ids = [int(i) for i in meta.get("opted_out_email_ids", [])]
    if email_ids:
        result = await session.execute(
            update(DebtorEmail)
            .where(DebtorEmail.id.in_(email_ids), DebtorEmail.status == "opted_out")
            .values(status="active")
            .execution_options(synchronize_session=False)
        )
        undone["addresses_reactivated"] = int(getattr(result, "rowcount", 0) or 0)
    await session.flush()

    why = f"a collector reverted decision {entry_id} ({meta['rule']})"
    if target is not was:
        why += (
            f"; {was.value} cannot be re-entered from {state.value}: "
            f"{target.value} is the nearest dunning state"
        )
    new = await append_entry(
        session,
        case.id,
        kind=STATE_KIND if target is not state else DECISION_KIND,
        actor=collector,
        now=now,
        meta={
            "rule": "revert",
            "reverts_entry": entry_id,
            "intent": meta.get("intent"),
            "from_state": state.value,
            "to_state": target.value,
            "event": event.value if event else None,
            "why": why,
            "undone": undone,
        },
    )
    entry.meta = {**meta, "reverted_by": new.id}
    await session.flush()
    return Decision(
        rule="revert",
        intent=str(meta.get("intent") or ""),
        from_state=state,
        to_state=target,
        why=why,
        entry_id=new.id,
    )
