"""Put a message the relay could not deliver on its case's thread, so the collector sees it.

A permanent SMTP failure (5xx), or a temporary one that ran out of attempts or time, becomes a
``bounce`` thread entry: the reply code and the enhanced status code (RFC 3463) in its
metadata, the server's full answer (which may name the address) in its encrypted body. The
entry's ``seq`` is the case's next one, taken while holding a lock on the case row.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.storage.models import Case, OutboxMessage, ThreadEntry

#: RFC 3463 enhanced status code at the start of a reply text, e.g. "5.1.1"
_ENHANCED = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})\b")

BOUNCE_KIND = "bounce"


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


def enhanced_status(reply: str) -> str | None:
    match = _ENHANCED.match(reply)
    return match.group(1) if match else None


async def record_bounce(
    session: AsyncSession,
    *,
    row: OutboxMessage,
    code: int | None,
    reply: str,
    summary: str,
    final: str,
    attempts: int,
    actor: str,
    now: datetime,
) -> ThreadEntry | None:
    """Add a ``bounce`` entry for ``row`` to its case (None if the row has no case).

    ``final`` says why delivery ended: ``permanent`` (a 5xx answer) or ``gave_up`` (temporary
    failures until the attempts or the age ran out).
    """
    if row.case_id is None:
        return None
    await lock_case(session, row.case_id)
    meta: dict[str, Any] = {
        "outbox_id": row.id,
        "final": final,
        "reply_code": code,
        "enhanced_status": enhanced_status(reply),
        "attempts": attempts,
        "answer": summary,
        "in_reply_to_entry": row.thread_entry_id,
    }
    entry = ThreadEntry(
        case_id=row.case_id,
        seq=await next_seq(session, row.case_id),
        kind=BOUNCE_KIND,
        actor=actor,
        occurred_at=now,
        message_id=row.message_id,
        subject=None,
        body=reply,
        meta=meta,
        internal=False,
    )
    session.add(entry)
    await session.flush()
    return entry
