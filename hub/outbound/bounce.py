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

from sqlalchemy.ext.asyncio import AsyncSession

from hub.services.thread import lock_case, next_seq
from hub.storage.models import OutboxMessage, ThreadEntry

__all__ = ["BOUNCE_KIND", "enhanced_status", "lock_case", "next_seq", "record_bounce"]

#: RFC 3463 enhanced status code at the start of a reply text, e.g. "5.1.1"
_ENHANCED = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})\b")

BOUNCE_KIND = "bounce"


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
