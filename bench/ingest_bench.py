"""End-to-end ingestion speed: Dovecot -> fetch -> store -> parse -> decrypt -> detect ->
reply text -> understood, beside the bare UID FETCH rate of the same mailbox.

Starts a private Dovecot (tests/dovecot.py) and fills INBOX with N replies of about 4 KB, a
share of them signed and encrypted to the hub's OpenPGP key (real GnuPG, PGP/MIME with MDC).
Then, on a fresh SQLite database (or ``--db-url``):

* bare: aioimaplib alone, ``UID FETCH`` of every message (bench/imap_bench.py's measurement);
* hub: :func:`hub.inbound.ingest.ingest_once` (fetch and store, then every stage over what was
  stored, the CPU stages in a process pool), timed as a whole and by phase;
* the same processing with the CPU stages in one worker thread (no pool), for comparison;
* the loops of ``hub ingest`` side by side on a second fresh database (the mailbox's
  ``$HubIngested`` flags removed first): fetch, stages and record step woken by one another,
  timed until every message is recorded (``triage``: no case exists).

Run: ``.venv/bin/python bench/ingest_bench.py -n 2000 --encrypted 0.25``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dovecot import Dovecot
from imap_bench import bare_fetch
from imap_support import imap_settings, reply
from ingest_support import encrypted_reply, make_homes, with_hub_keys
from sqlalchemy import delete, func, select, update

from hub.config import Settings, load_settings
from hub.crypto.at_rest import generate_key
from hub.inbound.fetch import fetch_once
from hub.inbound.ingest import ingest_runners, stage_pool
from hub.inbound.pipeline import StageEnv, process_stored
from hub.storage import migrate
from hub.storage.db import Database, open_database
from hub.storage.models import ImapCheckpoint, InboundMessage, QuarantinedMessage


async def _database(settings: Settings) -> Database:
    database = open_database(settings)
    await migrate.upgrade(database.engine)
    return database


async def _clear(settings: Settings) -> None:
    database = open_database(settings)
    try:
        async with database.transaction() as session:
            await session.execute(delete(QuarantinedMessage))
            await session.execute(delete(InboundMessage))
            await session.execute(delete(ImapCheckpoint))
    finally:
        await database.close()


async def hub_ingest(settings: Settings, n: int) -> tuple[float, float, float, float]:
    """(end to end with the pool, fetch+store, process with the pool, process in a thread)."""
    database = await _database(settings)
    env = StageEnv.from_settings(settings)
    try:
        with stage_pool() as pool:
            # the pool's workers start (spawn) before the clock: a worker pays that once
            if pool is not None:
                await asyncio.gather(*(asyncio.wrap_future(pool.submit(int)) for _ in range(4)))
            start = time.perf_counter()
            fetched = await fetch_once(settings, database, process=False)
            middle = time.perf_counter()
            processed = await process_stored(database, env, executor=pool)
            end = time.perf_counter()
        assert fetched.stored == n and processed.parsed == n, (fetched, processed)
        async with database.transaction() as session:
            await session.execute(update(InboundMessage).values(state="stored"))
        start_thread = time.perf_counter()
        again = await process_stored(database, env)
        thread = time.perf_counter() - start_thread
        assert again.parsed == n, again
    finally:
        await database.close()
    return end - start, middle - start, end - middle, thread


async def loops_ingest(settings: Settings, n: int) -> float:
    """Seconds until ``hub ingest``'s loops, running together, have recorded all ``n``."""
    database = await _database(settings)
    stop = asyncio.Event()
    fetch, process = ingest_runners()
    start = time.perf_counter()
    tasks = [
        asyncio.create_task(fetch(settings, database, stop, "bench")),
        asyncio.create_task(process(settings, database, stop, "bench")),
    ]
    try:
        while True:
            async with database.transaction() as session:
                done = await session.scalar(
                    select(func.count()).where(InboundMessage.state == "triage")
                )
            if done == n:
                return time.perf_counter() - start
            assert not any(task.done() for task in tasks), tasks
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await database.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="messages (default 2000)")
    parser.add_argument("--encrypted", type=float, default=0.25, help="share PGP-encrypted")
    parser.add_argument("--db-url", default=None, help="database URL (default: SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        homes = make_homes(Path(tmp) / "gpg")
        dovecot = Dovecot.create()
        try:
            every = max(1, round(1 / args.encrypted)) if args.encrypted > 0 else 0
            batch = [
                encrypted_reply(homes, f"<enc-{i}@debtor.example>")
                if every and i % every == 0
                else reply(i, size=4000)
                for i in range(args.n)
            ]
            encrypted = sum(1 for raw in batch if b"multipart/encrypted" in raw)
            for i in range(0, len(batch), 500):
                dovecot.deliver(*batch[i : i + 500])
            bare = await bare_fetch(dovecot, args.n)
            env = {
                "HUB_SECURITY_AT_REST_KEYS": f"k1:{generate_key()}",
                "HUB_SECURITY_LOOKUP_KEY": generate_key(),
                "HUB_SECURITY_REPLY_TOKEN_KEY": generate_key(),
                "HUB_DATABASE_URL": args.db_url or f"sqlite+aiosqlite:///{tmp}/bench.db",
            }
            settings = with_hub_keys(imap_settings(load_settings(None, env), dovecot), homes)
            total, fetch, process, thread = await hub_ingest(settings, args.n)
            dovecot.doveadm(
                "flags", "remove", "-u", dovecot.user, "$HubIngested", "mailbox", "INBOX", "all"
            )
            url = args.db_url or f"sqlite+aiosqlite:///{tmp}/loops.db"
            if args.db_url is not None:  # the same database: start it afresh
                await _clear(settings)
            loops_settings = settings.model_copy(
                update={"database": settings.database.model_copy(update={"url": url})}
            )
            loops = await loops_ingest(loops_settings, args.n)
        finally:
            dovecot.destroy()
            homes.close()
    n = args.n
    print(f"messages:                   {n} (about 4 KB; {encrypted} PGP-encrypted to the hub)")
    print(f"bare UID FETCH:             {n / bare:8.0f} msg/s")
    print(f"hub ingest end to end:      {n / total:8.0f} msg/s (process pool)")
    print(f"  fetch + store:            {n / fetch:8.0f} msg/s")
    print(f"  stages + record (pool):   {n / process:8.0f} msg/s")
    print(f"  stages + record (thread): {n / thread:8.0f} msg/s")
    print(f"ratio bare/hub end to end:  {total / bare:8.1f}x slower ({bare / total:.3f})")
    print(f"hub ingest loops together:  {n / loops:8.0f} msg/s (fetch, stages, record step)")
    print(f"ratio bare/loops:           {loops / bare:8.1f}x slower ({bare / loops:.3f})")


if __name__ == "__main__":
    asyncio.run(main())
