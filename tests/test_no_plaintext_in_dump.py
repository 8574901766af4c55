"""A dump of the database holds no readable personal data, on SQLite and on PostgreSQL.

SQLite: the raw database file with its -wal and -shm files, and ``iterdump()``. PostgreSQL:
``pg_dump`` in plain format. Each personal string is searched as UTF-8, lower-cased, UTF-16
(both byte orders) and as hex (how both dumps print binary values). A value deliberately stored
in clear proves that the search finds what is there.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

from sample_personal_data import CANARY, PERSONAL_STRINGS, populate
from sqlalchemy.engine import make_url

from hub.config import Settings
from hub.security.audit import record
from hub.storage.db import Database

PG_DUMP_CANDIDATES = ["/usr/lib/postgresql/15/bin/pg_dump"]


def variants(value: str) -> dict[str, bytes]:
    found = {}
    for label, text in (("as given", value), ("lower-cased", value.lower())):
        for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
            data = text.encode(encoding)
            found[f"{label} {encoding}"] = data
            found[f"{label} {encoding} as hex"] = data.hex().encode("ascii")
    return found


def assert_no_personal_data(dump: bytes, where: str) -> None:
    haystack = dump.lower()  # hex may be printed in either case
    leaks = [
        f"{value!r} ({how})"
        for value in PERSONAL_STRINGS
        for how, needle in variants(value).items()
        if needle.lower() in haystack
    ]
    assert not leaks, f"personal data readable in {where}: {leaks}"


def assert_canary_found(dump: bytes, where: str) -> None:
    assert CANARY.encode() in dump, f"the search cannot see plain values in {where}"


def find_pg_dump() -> str:
    found = shutil.which("pg_dump")
    if found:
        return found
    for candidate in PG_DUMP_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    raise AssertionError("pg_dump is required (it comes with the PostgreSQL server package)")


async def pg_dump(url: str) -> bytes:
    parsed = make_url(url)
    process = await asyncio.create_subprocess_exec(
        find_pg_dump(),
        "--format=plain",
        "--no-owner",
        f"--host={parsed.host}",
        f"--port={parsed.port or 5432}",
        f"--username={parsed.username}",
        f"--dbname={parsed.database}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode(errors="replace")
    return out


def sqlite_iterdump(path: Path) -> bytes:
    conn = sqlite3.connect(path)
    try:
        return "\n".join(conn.iterdump()).encode("utf-8")
    finally:
        conn.close()


def sqlite_files(path: Path) -> dict[str, bytes]:
    files = {}
    for suffix in ("", "-wal", "-shm"):
        candidate = path.with_name(path.name + suffix)
        if candidate.exists():
            files[candidate.name] = candidate.read_bytes()
    return files


async def test_dump_holds_no_personal_data(database: Database, settings: Settings) -> None:
    ids = await populate(database)
    async with database.transaction() as session:
        await record(session, "user:1", "debtor.updated", "debtor", ids["debtor"], None, {})

    url = settings.database_url()
    if database.is_postgres:
        dump = await pg_dump(url)
        assert b"COPY public.debtors" in dump
        assert_canary_found(dump, "pg_dump")
        assert_no_personal_data(dump, "pg_dump")
        return

    path = Path(make_url(url).database or "")
    # while the engine is open: the data may sit in the -wal file only
    files = await asyncio.to_thread(sqlite_files, path)
    assert path.name + "-wal" in files
    raw = b"".join(files.values())
    assert_canary_found(raw, "the SQLite files")
    for name, content in files.items():
        assert_no_personal_data(content, name)
    dump = await asyncio.to_thread(sqlite_iterdump, path)
    assert b'INSERT INTO "debtors"' in dump
    assert_canary_found(dump, "iterdump")
    assert_no_personal_data(dump, "iterdump")

    # and after a checkpoint folds the WAL into the main file
    await database.close()
    files = await asyncio.to_thread(sqlite_files, path)
    assert_canary_found(b"".join(files.values()), "the checkpointed SQLite files")
    for name, content in files.items():
        assert_no_personal_data(content, name)


def test_the_search_would_find_a_leak() -> None:
    leak = f"x'{b'Vandersloot'.hex().upper()}' and Quirinius".encode()
    try:
        assert_no_personal_data(leak, "a crafted dump")
    except AssertionError as exc:
        assert "Vandersloot" in str(exc)
    else:
        raise AssertionError("the hex-encoded name was not found")
    utf16 = "kleinwuppertalhausen".encode("utf-16-le")
    try:
        assert_no_personal_data(utf16, "a crafted dump")
    except AssertionError as exc:
        assert "Kleinwuppertalhausen" in str(exc)
    else:
        raise AssertionError("the UTF-16 city was not found")
