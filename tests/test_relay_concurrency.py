"""Concurrent relays never claim the same outbox row, on PostgreSQL and on SQLite.

PostgreSQL: the claim's ``FOR UPDATE SKIP LOCKED`` lets a second claimer pass rows another
transaction holds, without waiting. SQLite ignores ``FOR UPDATE``; its single writer and the
re-checked ``state = 'pending'`` in the one UPDATE statement keep the claims disjoint.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from relay_support import FaultyHandler, make_message, relay_settings, start_server
from sqlalchemy import func, select, update

from hub.config import Settings
from hub.outbound import claims
from hub.outbound.outbox import enqueue
from hub.outbound.relay import Relay
from hub.storage.db import Database, open_database
from hub.storage.models import OutboxMessage


async def _queue(database: Database, count: int) -> None:
    async with database.transaction() as s:
        for n in range(count):
            mid = f"<m{n}@hub.test>"
            to = f"d{n}@dom{n % 5}.test"
            await enqueue(
                s,
                idempotency_key=f"k{n}",
                case_id=None,
                thread_entry_id=None,
                envelope_from="bounces@hub.test",
                recipients=[to],
                message_id=mid,
                message=make_message(mid, to),
            )


@pytest.fixture
async def second_database(settings: Settings, database: Database) -> AsyncIterator[Database]:
    """The same database through an engine (and connections) of its own: another relay."""
    other = open_database(settings, database.keyring)
    yield other
    await other.close()


async def _claim_until_empty(database: Database, worker: str, batch: int) -> list[int]:
    got: list[int] = []
    while True:
        async with database.transaction() as s:
            ids = await claims.claim_batch(s, worker_id=worker, now=datetime.now(UTC), limit=batch)
        assert len(ids) <= batch  # a claim never takes more than its limit
        if not ids:
            return got
        got.extend(ids)
        await asyncio.sleep(0)


async def test_concurrent_claimers_get_disjoint_rows(
    database: Database, second_database: Database
) -> None:
    await _queue(database, 300)
    dbs = [database, second_database, database, second_database]
    results = await asyncio.gather(
        *(_claim_until_empty(db, f"w{i}", 7) for i, db in enumerate(dbs))
    )
    for a, b in itertools.combinations(results, 2):
        assert not set(a) & set(b)
    everything = [i for r in results for i in r]
    assert len(everything) == len(set(everything)) == 300
    assert sum(1 for r in results if r) >= 2  # the claimers really interleaved
    async with database.sessions() as s:
        rows = (await s.execute(select(OutboxMessage.id, OutboxMessage.claimed_by))).all()
    owner = {i: f"w{n}" for n, r in enumerate(results) for i in r}
    assert {row_id: by for row_id, by in rows} == owner


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_skip_locked_passes_rows_held_by_an_open_claim(
    database: Database, second_database: Database
) -> None:
    await _queue(database, 30)
    async with database.transaction() as holder:
        held = await claims.claim_batch(holder, worker_id="a", now=datetime.now(UTC), limit=10)
        # the first claim is not committed: its rows are locked, and still 'pending' to others
        async with asyncio.timeout(5), second_database.transaction() as other:
            taken = await claims.claim_batch(other, worker_id="b", now=datetime.now(UTC), limit=10)
    assert held == list(range(1, 11))
    assert taken == list(range(11, 21))  # skipped, without waiting for the holder


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_sqlite_claim_waits_for_an_open_claim_then_takes_other_rows(
    database: Database, second_database: Database
) -> None:
    await _queue(database, 30)
    async with database.transaction() as holder:
        held = await claims.claim_batch(holder, worker_id="a", now=datetime.now(UTC), limit=10)

        async def other_claim() -> list[int]:
            async with second_database.transaction() as other:
                return await claims.claim_batch(
                    other, worker_id="b", now=datetime.now(UTC), limit=10
                )

        waiting = asyncio.create_task(other_claim())
        await asyncio.sleep(0.3)
        assert not waiting.done()  # one writer at a time: it waits for the holder's commit
    taken = await asyncio.wait_for(waiting, 10)
    assert held == list(range(1, 11))
    assert taken == list(range(11, 21))


async def test_two_relays_deliver_each_message_once(
    database: Database, second_database: Database, settings: Settings
) -> None:
    handler = FaultyHandler()
    controller = start_server(handler)
    try:
        settings = relay_settings(settings, controller.port, relay_batch_size=10)
        await _queue(database, 200)
        relays = [Relay(settings, database, "r1"), Relay(settings, second_database, "r2")]

        async def drain(relay: Relay) -> int:
            sent = 0
            while (counts := await relay.run_once()).claimed:
                sent += counts.sent
            return sent

        sent = await asyncio.gather(*(drain(r) for r in relays))
    finally:
        controller.stop()
    assert sum(sent) == 200 and min(sent) > 0
    received = Counter(handler.message_ids())
    assert len(received) == 200 and max(received.values()) == 1
    async with database.sessions() as s:
        states = dict(
            (
                await s.execute(
                    select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)
                )
            ).all()
        )
    assert states == {"sent": 200}


async def test_expired_claims_of_a_dead_relay_are_recovered(
    database: Database, settings: Settings
) -> None:
    handler = FaultyHandler()
    controller = start_server(handler)
    try:
        settings = relay_settings(settings, controller.port, relay_lease_seconds=60)
        await _queue(database, 4)
        async with database.transaction() as s:
            now = datetime.now(UTC)
            assert await claims.claim_batch(s, worker_id="dead", now=now, limit=2) == [1, 2]
            assert await claims.claim_batch(s, worker_id="alive", now=now, limit=1) == [3]
            # the dead relay claimed five minutes ago, longer than the lease
            await s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.claimed_by == "dead")
                .values(claimed_at=now - timedelta(minutes=5))
            )
        counts = await Relay(settings, database, "r1").run_once()
    finally:
        controller.stop()
    assert counts.recovered == 2 and counts.sent == 3  # 1, 2 (recovered) and 4
    async with database.sessions() as s:
        rows = {r.id: r for r in (await s.execute(select(OutboxMessage))).scalars()}
    assert rows[3].state == "sending" and rows[3].claimed_by == "alive"  # a live claim: untouched
    assert [rows[i].state for i in (1, 2, 4)] == ["sent"] * 3
    assert rows[1].attempts == 2 and rows[4].attempts == 1  # the lost claim counted as an attempt
    assert sorted(handler.message_ids()) == ["<m0@hub.test>", "<m1@hub.test>", "<m3@hub.test>"]
