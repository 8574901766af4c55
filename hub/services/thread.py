"""Writing to a case's thread: the case lock, the next ``seq``, and appending an entry.

Every writer of a thread (reminders, bounces, collectors' notes, automation, payments) takes
the case's row lock first and numbers its entry ``max(seq) + 1`` while holding it, so a
thread's order is total and gap-free whoever writes to it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.errors import NotFoundError
from hub.storage.models import Case, ThreadEntry


async def lock_case(session: AsyncSession, case_id: int) -> None:
    """Serialise writers of one case's thread until the transaction ends.

    PostgreSQL: ``SELECT ... FOR UPDATE`` on the case row. SQLite ignores ``FOR UPDATE``, so a
    no-op UPDATE of the row takes the database's single write lock before ``max(seq)`` is read
    (a read first would leave the transaction on a snapshot that a concurrent writer may make
    stale).
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(Case.id).where(Case.id == case_id).with_for_update())
    else:
        await session.execute(update(Case).where(Case.id == case_id).values(id=Case.id))


async def next_seq(session: AsyncSession, case_id: int) -> int:
    """The next thread position of a case; call it after :func:`lock_case`."""
    result = await session.execute(
        select(func.coalesce(func.max(ThreadEntry.seq), 0)).where(ThreadEntry.case_id == case_id)
    )
    return int(result.scalar_one()) + 1


async def load_case(session: AsyncSession, case_id: int) -> Case:
    """The case row as it is now, not as the session last saw it (call after :func:`lock_case`)."""
    case = await session.scalar(
        select(Case).where(Case.id == case_id).execution_options(populate_existing=True)
    )
    if case is None:
        raise NotFoundError(f"no case with id {case_id}")
    return case


async def append_entry(
    session: AsyncSession,
    case_id: int,
    *,
    kind: str,
    actor: str,
    now: datetime,
    meta: dict[str, Any],
    internal: bool = False,
    body: str | None = None,
) -> ThreadEntry:
    """Add an entry at the end of the thread (the caller holds :func:`lock_case`); flushed."""
    entry = ThreadEntry(
        case_id=case_id,
        seq=await next_seq(session, case_id),
        kind=kind,
        actor=actor,
        occurred_at=now,
        body=body,
        meta=meta,
        internal=internal,
    )
    session.add(entry)
    await session.flush()
    return entry
