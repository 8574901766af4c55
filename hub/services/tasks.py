"""Collectors' tasks: what automation hands to a person (review a dispute, approve a plan, …).

A task belongs to a case and names the thread entry (decision) that opened it, so the person
sees why it exists; closing it records who did and when. Callers hold the case lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.storage.models_cases import CollectorTask

OPEN = "open"
DONE = "done"


async def open_task(
    session: AsyncSession,
    case_id: int,
    kind: str,
    *,
    reason: str,
    entry_id: int | None,
    now: datetime,
) -> CollectorTask:
    task = CollectorTask(
        case_id=case_id,
        kind=kind,
        status=OPEN,
        thread_entry_id=entry_id,
        reason=reason[:400],
        created_at=now,
    )
    session.add(task)
    await session.flush()
    return task


async def close_tasks(
    session: AsyncSession,
    case_id: int,
    *,
    done_by: str,
    now: datetime,
    kinds: Iterable[str] | None = None,
    ids: Iterable[int] | None = None,
) -> int:
    """Mark a case's open tasks done (all, those of ``kinds``, or those in ``ids``)."""
    stmt = update(CollectorTask).where(
        CollectorTask.case_id == case_id, CollectorTask.status == OPEN
    )
    if kinds is not None:
        stmt = stmt.where(CollectorTask.kind.in_(list(kinds)))
    if ids is not None:
        stmt = stmt.where(CollectorTask.id.in_(list(ids)))
    result = await session.execute(
        stmt.values(status=DONE, done_by=done_by, done_at=now).execution_options(
            synchronize_session=False
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def open_tasks(
    session: AsyncSession, *, case_id: int | None = None, kind: str | None = None
) -> list[CollectorTask]:
    """Open tasks, oldest first (a case's, or a kind's across cases)."""
    stmt = select(CollectorTask).where(CollectorTask.status == OPEN)
    if case_id is not None:
        stmt = stmt.where(CollectorTask.case_id == case_id)
    if kind is not None:
        stmt = stmt.where(CollectorTask.kind == kind)
    return list((await session.scalars(stmt.order_by(CollectorTask.id))).all())
