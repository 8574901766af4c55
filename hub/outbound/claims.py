"""The relay's side of the outbox table: claim due rows, release them, record outcomes.

On PostgreSQL a claim is ``SELECT id ... LIMIT n FOR UPDATE SKIP LOCKED`` followed by
``UPDATE ... WHERE id IN (those) AND state = 'pending'`` in one transaction, so concurrent relays
(in other processes or on other machines) skip each other's rows instead of waiting. On SQLite,
which has one writer at a time and silently ignores ``FOR UPDATE``, it is one ``UPDATE ... WHERE
id IN (SELECT ... LIMIT n) AND state = 'pending' RETURNING id``: the repeated state test inside
the single statement keeps a row from going to two claimers.

Every outcome is written only by the claim's holder (``claimed_by``), so a relay whose claim
expired and was taken over cannot overwrite the new holder's result.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, CursorResult, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.outbound.outbox import FAILED, PENDING, SENDING, SENT
from hub.storage.models import OutboxMessage

_O = OutboxMessage


async def claim_batch(
    session: AsyncSession, *, worker_id: str, now: datetime, limit: int
) -> list[int]:
    """Claim up to ``limit`` due pending rows for ``worker_id``; their ids, oldest first."""
    due = (
        select(_O.id)
        .where(_O.state == PENDING, _O.next_attempt_at <= now)
        .order_by(_O.id)
        .limit(limit)
    )
    claim = update(_O).values(state=SENDING, claimed_by=worker_id, claimed_at=now)
    if session.get_bind().dialect.name == "postgresql":
        # Two statements on purpose. As one statement, "UPDATE ... WHERE id IN (SELECT ...
        # LIMIT n FOR UPDATE SKIP LOCKED)" was planned (prepared, small table) as a nested-loop
        # semi-join that re-ran the sub-select for every outer row; each re-run skipped the rows
        # the statement had just updated and locked the next n, so one claim took the whole
        # table (measured: 30 rows for LIMIT 10 on PostgreSQL 15). The locks taken here are
        # held until the caller's transaction ends.
        ids = list((await session.execute(due.with_for_update(skip_locked=True))).scalars())
        if not ids:
            return []
        stmt = claim.where(_O.id.in_(ids), _O.state == PENDING).returning(_O.id)
    else:
        # SQLite evaluates the uncorrelated sub-select once, and runs the statement under its
        # single write lock: the re-checked state keeps a row from going to two claimers
        stmt = claim.where(_O.id.in_(due.scalar_subquery()), _O.state == PENDING).returning(_O.id)
    claimed = sorted((await session.execute(stmt)).scalars())
    return claimed


async def load(session: AsyncSession, ids: list[int]) -> list[OutboxMessage]:
    if not ids:
        return []
    result = await session.execute(select(_O).where(_O.id.in_(ids)).order_by(_O.id))
    return list(result.scalars())


async def release(
    session: AsyncSession,
    *,
    worker_id: str,
    now: datetime,
    ids: list[int] | None = None,
    count_attempt: bool,
    reason: str | None = None,
) -> int:
    """Give claims of ``worker_id`` back (all of them, or ``ids``): pending and due now.

    ``count_attempt`` is for claims that ended without an outcome (the relay died while holding
    them): counting them makes a message that crashes the relay every time run out of attempts.
    """
    stmt = update(_O).where(_O.state == SENDING, _O.claimed_by == worker_id)
    if ids is not None:
        stmt = stmt.where(_O.id.in_(ids))
    values: dict[str, object] = {
        "state": PENDING,
        "claimed_by": None,
        "claimed_at": None,
        "next_attempt_at": now,
    }
    if count_attempt:
        values["attempts"] = _O.attempts + 1
    if reason is not None:
        values["last_error"] = reason
    return _rowcount(await session.execute(stmt.values(**values)))


async def recover_expired(session: AsyncSession, *, now: datetime, lease_seconds: float) -> int:
    """Release claims older than the lease (their relay died); each counts as an attempt."""
    cutoff = now - timedelta(seconds=lease_seconds)
    stmt = (
        update(_O)
        .where(_O.state == SENDING, _O.claimed_at < cutoff)
        .values(
            state=PENDING,
            claimed_by=None,
            claimed_at=None,
            next_attempt_at=now,
            attempts=_O.attempts + 1,
            last_error="claim expired: the relay holding it stopped (it may have been sent)",
        )
    )
    return _rowcount(await session.execute(stmt))


def _mine(row_id: int, worker_id: str) -> ColumnElement[bool]:
    return and_(_O.id == row_id, _O.state == SENDING, _O.claimed_by == worker_id)


async def mark_sent(
    session: AsyncSession, *, row_id: int, worker_id: str, now: datetime, attempts: int
) -> bool:
    stmt = (
        update(_O)
        .where(_mine(row_id, worker_id))
        .values(state=SENT, sent_at=now, attempts=attempts, last_error=None)
    )
    return _rowcount(await session.execute(stmt)) == 1


async def mark_retry(
    session: AsyncSession,
    *,
    row_id: int,
    worker_id: str,
    attempts: int,
    next_attempt_at: datetime,
    error: str | None,
) -> bool:
    """Back to pending for a later attempt; ``attempts`` unchanged means a deferral."""
    stmt = (
        update(_O)
        .where(_mine(row_id, worker_id))
        .values(
            state=PENDING,
            attempts=attempts,
            next_attempt_at=next_attempt_at,
            claimed_by=None,
            claimed_at=None,
            **({"last_error": error} if error is not None else {}),
        )
    )
    return _rowcount(await session.execute(stmt)) == 1


async def mark_failed(
    session: AsyncSession, *, row_id: int, worker_id: str, attempts: int, error: str
) -> bool:
    stmt = (
        update(_O)
        .where(_mine(row_id, worker_id))
        .values(state=FAILED, attempts=attempts, last_error=error)
    )
    return _rowcount(await session.execute(stmt)) == 1


async def next_due(session: AsyncSession) -> datetime | None:
    """When the earliest pending row comes due (None if nothing is pending)."""
    result = await session.execute(select(func.min(_O.next_attempt_at)).where(_O.state == PENDING))
    value = result.scalar_one_or_none()
    if value is None:
        return None
    # an aggregate bypasses the column type: SQLite hands back text or a naive datetime
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value if isinstance(value, datetime) else None


def _rowcount(result: object) -> int:
    if isinstance(result, CursorResult):
        return int(result.rowcount)
    return 0
