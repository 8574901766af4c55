"""Broken and kept promises: when a promise's date plus grace has passed, dunning resumes.

A promise (recorded by :mod:`hub.services.automation`) put the case in ``promised`` with
``paused_until`` = the promised date plus the creditor's grace days. :func:`check_promises`
looks at every promised case whose pause has ended, each in its own transaction under the case
lock: the money paid since the promise is compared with what was promised (a promise without an
amount is the whole balance; a paid case has already left ``promised``). Enough money: the
promise was kept, a ``promise_kept`` entry, and dunning resumes for any rest. Not enough: the
promise is broken, a ``promise_broken`` entry, back to ``reminded``, and dunning resumes.
The clock is an argument, so the tests choose the day.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.domain.case_state import CaseEvent, CaseState, transition
from hub.services.thread import append_entry, load_case, lock_case
from hub.storage.db import Database
from hub.storage.models import Case, ThreadEntry

log = logging.getLogger(__name__)

ACTOR = "system:promises"
BROKEN_KIND = "promise_broken"
KEPT_KIND = "promise_kept"
PROMISE_RULE = "payment_promise"


@dataclass
class PromiseSummary:
    checked: int = 0
    broken: int = 0
    kept: int = 0

    def summary(self) -> str:
        return f"checked={self.checked} broken={self.broken} kept={self.kept}"


async def latest_promise(session: AsyncSession, case_id: int) -> ThreadEntry | None:
    """The case's newest promise decision that was not reverted."""
    entries = await session.scalars(
        select(ThreadEntry)
        .where(ThreadEntry.case_id == case_id, ThreadEntry.kind == "state_change")
        .order_by(ThreadEntry.seq.desc())
    )
    for entry in entries:
        meta = entry.meta or {}
        if meta.get("rule") == PROMISE_RULE and not meta.get("reverted_by"):
            return entry
    return None


def _kept(case: Case, promise: dict[str, Any]) -> tuple[bool, Decimal]:
    paid_since = case.paid_amount - Decimal(str(promise.get("paid_before", "0")))
    balance = case.claim_amount + case.fees - case.paid_amount
    amount = promise.get("amount")
    if balance <= 0:
        return True, paid_since
    if amount is None:
        return False, paid_since
    return paid_since >= Decimal(str(amount)), paid_since


async def _settle(session: AsyncSession, case_id: int, now: datetime) -> str | None:
    await lock_case(session, case_id)
    case = await load_case(session, case_id)
    if case.state != CaseState.PROMISED or case.paused_until is None or case.paused_until > now:
        return None  # paid, disputed or renewed meanwhile
    entry = await latest_promise(session, case_id)
    promise: dict[str, Any] = dict((entry.meta or {}).get("promise") or {}) if entry else {}
    kept, paid_since = _kept(case, promise)
    event = CaseEvent.PROMISE_KEPT if kept else CaseEvent.PROMISE_BROKEN
    target = transition(CaseState.PROMISED, event)
    paused = case.paused_until
    case.state, case.paused_until = target.value, None
    if kept:
        why = "the promised money came: dunning resumes for whatever is still open"
    else:
        why = "the promised date and the grace days passed without the promised money"
    await append_entry(
        session,
        case.id,
        kind=KEPT_KIND if kept else BROKEN_KIND,
        actor=ACTOR,
        now=now,
        meta={
            "rule": event.value,
            "event": event.value,
            "from_state": CaseState.PROMISED.value,
            "to_state": target.value,
            "why": why,
            "promise_entry_id": entry.id if entry else None,
            "promised_date": promise.get("date"),
            "promised_amount": promise.get("amount"),
            "paid_since_promise": str(paid_since),
            "paused_until_before": paused.isoformat(),
        },
    )
    return "kept" if kept else "broken"


async def check_promises(database: Database, now: datetime) -> PromiseSummary:
    """Settle every promise whose date plus grace has passed by ``now``."""
    summary = PromiseSummary()
    async with database.sessions() as session:
        ids = list(
            (
                await session.scalars(
                    select(Case.id)
                    .where(
                        Case.state == CaseState.PROMISED.value,
                        Case.paused_until.is_not(None),
                        Case.paused_until <= now,
                    )
                    .order_by(Case.id)
                )
            ).all()
        )
    for case_id in ids:
        async with database.transaction() as session:
            outcome = await _settle(session, case_id, now)
        if outcome is None:
            continue
        summary.checked += 1
        if outcome == "kept":
            summary.kept += 1
        else:
            summary.broken += 1
            log.info("promises: case %s promise broken, dunning resumes", case_id)
    return summary
