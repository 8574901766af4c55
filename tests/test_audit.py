"""The hash-chained audit log: it verifies, tampering is found at its row, appends never fork."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from hub.security.audit import GENESIS_HASH, chain_status, compute_hash, record, verify_chain
from hub.storage.db import Database
from hub.storage.models import AuditEntry

HUB = str(Path(sys.executable).parent / "hub")


async def append(database: Database, count: int, actor: str = "user:1") -> list[int]:
    ids = []
    for n in range(count):
        async with database.transaction() as session:
            entry = await record(
                session,
                actor,
                "case.updated",
                "case",
                n,
                "192.0.2.10",
                {"field": "state", "old": "open", "new": "reminded", "n": n, "ratio": 0.25},
            )
            ids.append(entry.id)
    return ids


async def all_entries(database: Database) -> list[AuditEntry]:
    async with database.sessions() as session:
        return list((await session.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars())


async def broken_at(database: Database) -> int | None:
    async with database.sessions() as session:
        return await verify_chain(session)


async def raw_update(database: Database, sql: str, **params: object) -> None:
    async with database.engine.begin() as conn:
        result = await conn.execute(text(sql), params)
        assert result.rowcount == 1


def set_details(database: Database, extra: str = "") -> str:
    """A raw UPDATE of one row's details (a JSON parameter needs a cast on PostgreSQL)."""
    value = "CAST(:details AS JSON)" if database.is_postgres else ":details"
    return f"UPDATE audit_log SET details = {value}{extra} WHERE id = :id"  # noqa: S608


async def test_empty_log_verifies(database: Database) -> None:
    async with database.sessions() as session:
        status = await chain_status(session)
    assert status.entries == 0
    assert status.first_broken_id is None
    assert status.head_hash == GENESIS_HASH


async def test_chain_verifies(database: Database) -> None:
    ids = await append(database, 5)
    entries = await all_entries(database)
    assert [e.id for e in entries] == ids
    assert entries[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.entry_hash
    for entry in entries:
        assert entry.entry_hash == compute_hash(
            at=entry.at,
            actor=entry.actor,
            action=entry.action,
            object_type=entry.object_type,
            object_id=entry.object_id,
            remote_addr=entry.remote_addr,
            details=entry.details,
            prev_hash=entry.prev_hash,
        )
    assert entries[2].object_id == "2"
    assert entries[2].details["ratio"] == 0.25
    async with database.sessions() as session:
        status = await chain_status(session)
    assert status == type(status)(5, None, entries[-1].entry_hash)


async def test_several_appends_in_one_transaction(database: Database) -> None:
    async with database.transaction() as session:
        for n in range(3):
            await record(session, "system:importer", "case.imported", "case", n)
        # verifying inside the same transaction sees the flushed entries
        assert await verify_chain(session) is None
    assert await broken_at(database) is None
    assert len(await all_entries(database)) == 3


async def test_unusual_details_survive_the_round_trip(database: Database) -> None:
    details = {
        "z": [1, 2.5, None, True, {"nested": "ü ß æ ø 中"}],
        "a": 2**53 + 1,
        "tuple": (1, 2),
        "empty": {},
    }
    async with database.transaction() as session:
        entry = await record(session, "user:7", "plan.approved", "case", "C-9", None, details)
    assert entry.details["tuple"] == [1, 2]
    assert await broken_at(database) is None


@pytest.mark.parametrize("field", ["details", "actor", "at"])
async def test_tampering_is_found_at_that_row(database: Database, field: str) -> None:
    ids = await append(database, 5)
    target = ids[2]
    if field == "details":
        forged = json.dumps({"field": "state", "old": "open", "new": "paid", "n": 2, "ratio": 0.25})
        await raw_update(
            database,
            set_details(database),
            details=forged,
            id=target,
        )
    elif field == "actor":
        await raw_update(
            database, "UPDATE audit_log SET actor = 'user:2' WHERE id = :id", id=target
        )
    else:
        async with database.transaction() as session:
            entry = await session.get(AuditEntry, ids[0])
            assert entry is not None
            later = entry.at.replace(year=entry.at.year + 1)
        async with database.transaction() as session:
            await session.execute(
                AuditEntry.__table__.update().where(AuditEntry.id == target).values(at=later)
            )
    assert await broken_at(database) == target
    async with database.sessions() as session:
        status = await chain_status(session)
    assert status.first_broken_id == target
    assert status.entries == 3  # two good entries, then the broken one


async def test_rehashed_forgery_breaks_the_next_link(database: Database) -> None:
    ids = await append(database, 4)
    entries = await all_entries(database)
    victim = entries[1]
    details = {**victim.details, "new": "paid"}
    forged_hash = compute_hash(
        at=victim.at,
        actor=victim.actor,
        action=victim.action,
        object_type=victim.object_type,
        object_id=victim.object_id,
        remote_addr=victim.remote_addr,
        details=details,
        prev_hash=victim.prev_hash,
    )
    await raw_update(
        database,
        set_details(database, ", entry_hash = :h"),
        details=json.dumps(details),
        h=forged_hash,
        id=victim.id,
    )
    assert await broken_at(database) == ids[2]


async def test_deleted_row_breaks_the_next_link(database: Database) -> None:
    ids = await append(database, 4)
    async with database.engine.begin() as conn:
        await conn.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": ids[1]})
    assert await broken_at(database) == ids[2]


async def test_personal_data_in_details_is_refused(database: Database) -> None:
    with pytest.raises(ValueError, match="email address"):
        async with database.transaction() as session:
            await record(
                session, "user:1", "debtor.updated", "debtor", 1, None, {"to": "jane@example.org"}
            )
    with pytest.raises(ValueError, match="email address"):
        async with database.transaction() as session:
            await record(
                session, "user:1", "x", "debtor", 1, None, {"list": ["a", "Jane <j@x.example>"]}
            )
    assert await all_entries(database) == []


async def test_concurrent_appends_keep_one_chain(database: Database) -> None:
    workers, each = 8, 12

    async def worker(number: int) -> None:
        for n in range(each):
            async with database.transaction() as session:
                await record(session, f"worker:{number}", "tick", "test", n)
                await asyncio.sleep(0)  # let the others try to interleave while we hold it

    await asyncio.gather(*(worker(w) for w in range(workers)))
    entries = await all_entries(database)
    assert len(entries) == workers * each
    prev_hashes = [e.prev_hash for e in entries]
    assert len(set(prev_hashes)) == len(prev_hashes)  # no two entries claim the same parent
    assert await broken_at(database) is None
    async with database.sessions() as session:
        count = (await session.execute(select(func.count(AuditEntry.id)))).scalar_one()
    assert count == workers * each


async def test_cli_audit_verify(database: Database, hub_env: dict[str, str]) -> None:
    ids = await append(database, 3)

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [HUB, "audit", "verify"], env=hub_env, capture_output=True, text=True, timeout=60
        )

    ok = verify()
    assert ok.returncode == 0, ok.stderr
    entries = await all_entries(database)
    assert f"audit log intact: 3 entries, head {entries[-1].entry_hash}" in ok.stdout

    await raw_update(database, "UPDATE audit_log SET action = 'x' WHERE id = :id", id=ids[1])
    bad = verify()
    assert bad.returncode == 1
    assert f"audit log broken at entry id {ids[1]}" in bad.stderr
