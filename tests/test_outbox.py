"""The transactional outbox: enqueue is idempotent and lives or dies with its transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest
from relay_support import make_case, make_message
from sqlalchemy import func, select, text

from hub.outbound.outbox import PENDING, enqueue, recipient_domain, recipients_of
from hub.storage.db import Database
from hub.storage.models import OutboxMessage, ThreadEntry


async def _count(database: Database) -> int:
    async with database.sessions() as s:
        return int((await s.execute(select(func.count()).select_from(OutboxMessage))).scalar_one())


def _kwargs(key: str, to: str = "Jane.Doe@Example.ORG") -> dict[str, Any]:
    mid = f"<{key}@hub.test>"
    return {
        "idempotency_key": key,
        "case_id": None,
        "thread_entry_id": None,
        "envelope_from": "bounces@hub.test",
        "recipients": [to],
        "message_id": mid,
        "message": make_message(mid, to),
    }


async def test_enqueue_writes_a_pending_row(database: Database) -> None:
    case_id = await make_case(database)
    async with database.transaction() as s:
        row = await enqueue(s, **{**_kwargs("reminder:1:1"), "case_id": case_id})
    async with database.sessions() as s:
        stored = (await s.execute(select(OutboxMessage))).scalar_one()
        raw = (await s.execute(text("SELECT message, recipients FROM outbox"))).one()
    assert stored.id == row.id and stored.state == PENDING and stored.attempts == 0
    assert stored.recipient_domain == "example.org"
    assert recipients_of(stored) == ["Jane.Doe@Example.ORG"]
    assert stored.message.startswith(b"From: Reminders")
    # at rest the body and the recipients are ciphertext
    assert b"Please pay" not in bytes(raw[0]) and b"Jane" not in bytes(raw[1])


async def test_enqueue_is_idempotent(database: Database) -> None:
    async with database.transaction() as s:
        first = await enqueue(s, **_kwargs("reminder:7:2"))
    async with database.transaction() as s:
        again = await enqueue(s, **{**_kwargs("reminder:7:2"), "message_id": "<other@x>"})
        same_tx = await enqueue(s, **_kwargs("reminder:7:2"))
    assert again.id == first.id == same_tx.id
    assert again.message_id == "<reminder:7:2@hub.test>"  # the existing row, not the new one
    assert await _count(database) == 1


async def test_enqueue_rolls_back_with_its_transaction(database: Database) -> None:
    case_id = await make_case(database)

    class RollbackError(Exception):
        pass

    with pytest.raises(RollbackError):
        async with database.transaction() as s:
            s.add(ThreadEntry(case_id=case_id, seq=1, kind="outbound", actor="t"))
            await s.flush()
            await enqueue(s, **{**_kwargs("reminder:9:1"), "case_id": case_id})
            assert await _count_in(s) == 1  # visible inside the transaction
            raise RollbackError
    assert await _count(database) == 0
    async with database.sessions() as s:
        assert (await s.execute(select(func.count()).select_from(ThreadEntry))).scalar_one() == 0


async def _count_in(session: Any) -> int:
    result = await session.execute(select(func.count()).select_from(OutboxMessage))
    return int(result.scalar_one())


async def test_concurrent_enqueue_of_one_key_writes_one_row(database: Database) -> None:
    """Two transactions queue the same key at once: one row, and neither caller fails."""
    started = asyncio.Event()

    async def queue(delay: float) -> int:
        async with database.transaction() as s:
            row = await enqueue(s, **_kwargs("reminder:3:1"))
            started.set()
            await asyncio.sleep(delay)  # hold the transaction open while the other inserts
            return row.id

    if database.is_postgres:
        ids = await asyncio.gather(queue(0.3), _after(started, queue(0.0)))
    else:  # SQLite has one writer: the second waits on the lock, then sees the first's row
        ids = await asyncio.gather(queue(0.1), _after(started, queue(0.0)))
    assert ids[0] == ids[1]
    assert await _count(database) == 1


async def _after(event: asyncio.Event, coro: Coroutine[Any, Any, int]) -> int:
    await event.wait()
    return await coro


def test_recipient_domain() -> None:
    assert recipient_domain("a.b@Mail.Example.COM") == "mail.example.com"
    with pytest.raises(ValueError):
        recipient_domain("no-at-sign")
    with pytest.raises(ValueError):
        recipient_domain("a b@example.com")
