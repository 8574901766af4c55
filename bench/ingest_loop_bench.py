"""The ``hub ingest`` loops running together: how long until N delivered messages are recorded.

Starts a private Dovecot (tests/dovecot.py), fills INBOX with N replies of about 4 KB (a share
of them signed and encrypted to the hub's OpenPGP key), then runs the loops exactly as
``hub ingest`` does (:func:`hub.cli.ingest_cmd.ingest_loops` under
:func:`hub.cli.worker_cmd.run_loops`) on a fresh SQLite file or a PostgreSQL database of its
own, and samples the message states until every message is recorded (``triage``: no case
exists). With ``--trace`` it also prints every database transaction that lasted longer than
``--slow`` seconds, by the asyncio task that held it, and each "processing paused" warning:
the evidence for where the time goes.

Run: ``.venv/bin/python bench/ingest_loop_bench.py -n 500 [--postgres] [--trace]``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import asyncpg
from dovecot import Dovecot
from imap_support import imap_settings, reply
from ingest_support import encrypted_reply, make_homes, with_hub_keys
from sqlalchemy import event, func, select

from hub.cli.ingest_cmd import ingest_loops
from hub.cli.worker_cmd import run_loops
from hub.config import Settings, load_settings
from hub.crypto.at_rest import generate_key
from hub.storage import migrate
from hub.storage.db import Database, open_database
from hub.storage.models import InboundMessage

PG = "postgresql://root@127.0.0.1:5432/postgres"
RECORDED = {"triage", "routed", "quarantined", "duplicate"}


class Trace:
    """Transactions longer than ``slow`` seconds, by task, from the engine's events."""

    def __init__(self, database: Database, slow: float, t0: float) -> None:
        self.slow, self.t0 = slow, t0
        self.open: dict[int, tuple[float, str]] = {}
        self.lines: list[str] = []
        self.longest: Counter[str] = Counter()
        sync = database.engine.sync_engine
        event.listen(sync, "begin", self._begin)
        event.listen(sync, "commit", self._end)
        event.listen(sync, "rollback", self._end)

    @staticmethod
    def _task() -> str:
        try:
            task = asyncio.current_task()
        except RuntimeError:
            return "?"
        return task.get_name() if task is not None else "?"

    def _begin(self, conn: Any) -> None:
        self.open[id(conn)] = (time.perf_counter(), self._task())

    def _end(self, conn: Any) -> None:
        started = self.open.pop(id(conn), None)
        if started is None:
            return
        held = time.perf_counter() - started[0]
        name = started[1]
        self.longest[name] = max(self.longest[name], int(held * 1000))
        if held >= self.slow:
            self.lines.append(
                f"  t={started[0] - self.t0:6.2f}s {name:>8}: transaction held {held:6.2f}s"
            )


class Paused(logging.Handler):
    def __init__(self, t0: float) -> None:
        super().__init__(logging.WARNING)
        self.t0 = t0
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(("hub.inbound.ingest", "hub.inbound.fetch")):
            return
        self.lines.append(f"  t={record.created - self.t0:6.2f}s {record.getMessage()[:160]}")


async def _states(database: Database) -> Counter[str]:
    async with database.transaction() as session:
        result = await session.execute(
            select(InboundMessage.state, func.count()).group_by(InboundMessage.state)
        )
        return Counter({str(state): int(n) for state, n in result.all()})


async def _trickle(dovecot: Dovecot, batch: list[bytes], every: float) -> None:
    for i in range(0, len(batch), 50):
        await asyncio.to_thread(dovecot.deliver, *batch[i : i + 50])
        await asyncio.sleep(every)


async def run(
    settings: Settings,
    n: int,
    trace: bool,
    slow: float,
    within: float,
    later: list[bytes],
    dovecot: Dovecot,
    every: float,
) -> float:
    database = open_database(settings)
    await migrate.upgrade(database.engine)
    t0 = time.perf_counter()
    tracer = Trace(database, slow, t0) if trace else None
    paused = Paused(time.time())
    logging.getLogger("hub").addHandler(paused)
    stop = asyncio.Event()
    loops = asyncio.create_task(run_loops(settings, database, ingest_loops(), stop, "bench"))
    feeder = asyncio.create_task(_trickle(dovecot, later, every), name="deliver")
    try:
        last = ""
        while True:
            states = await _states(database)
            elapsed = time.perf_counter() - t0
            line = " ".join(f"{k}={v}" for k, v in sorted(states.items()))
            if line != last:
                print(f"  t={elapsed:6.2f}s {line}", flush=True)
                last = line
            if sum(states[s] for s in RECORDED) >= n:
                break
            if elapsed > within or loops.done():
                raise SystemExit(f"not recorded within {within} s: {line}")
            await asyncio.sleep(0.1)
        return elapsed
    finally:
        stop.set()
        feeder.cancel()
        await loops
        logging.getLogger("hub").removeHandler(paused)
        await database.close()
        for text in paused.lines:
            print(text)
        if tracer is not None:
            print(f"  slow transactions (>= {slow} s): {len(tracer.lines)}")
            for text in tracer.lines[:40]:
                print(text)
            print(f"  longest transaction by task (ms): {dict(tracer.longest)}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=500, help="messages (default 500)")
    parser.add_argument("--encrypted", type=float, default=0.1, help="share PGP-encrypted")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL at 127.0.0.1:5432")
    parser.add_argument("--trace", action="store_true", help="print slow transactions")
    parser.add_argument("--slow", type=float, default=0.5, help="slow transaction (s)")
    parser.add_argument(
        "--trickle", type=float, default=0, help="deliver 50 every S seconds while running"
    )
    parser.add_argument("--within", type=float, default=300, help="give up after (s)")
    args = parser.parse_args()
    pg_name = f"hub_bench_{uuid.uuid4().hex[:8]}"
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
            later = batch if args.trickle else []
            for i in range(0, 0 if args.trickle else len(batch), 250):
                dovecot.deliver(*batch[i : i + 250])
            if args.postgres:
                conn = await asyncpg.connect(PG)
                await conn.execute(f'CREATE DATABASE "{pg_name}"')
                await conn.close()
                url = f"postgresql+asyncpg://root@127.0.0.1:5432/{pg_name}"
            else:
                url = f"sqlite+aiosqlite:///{tmp}/bench.db"
            env = {
                "HUB_SECURITY_AT_REST_KEYS": f"k1:{generate_key()}",
                "HUB_SECURITY_LOOKUP_KEY": generate_key(),
                "HUB_SECURITY_REPLY_TOKEN_KEY": generate_key(),
                "HUB_DATABASE_URL": url,
                "HUB_HUB_DATA_DIR": str(Path(tmp) / "data"),
                "HUB_IMAP_FETCH_BATCH": "50",
            }
            settings = with_hub_keys(imap_settings(load_settings(None, env), dovecot), homes)
            mode = f", 50 delivered every {args.trickle} s" if args.trickle else ""
            print(f"{args.n} messages{mode} on {'PostgreSQL' if args.postgres else 'SQLite'}:")
            elapsed = await run(
                settings, args.n, args.trace, args.slow, args.within, later, dovecot, args.trickle
            )
        finally:
            dovecot.destroy()
            homes.close()
            if args.postgres:
                conn = await asyncpg.connect(PG)
                await conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
                await conn.close()
    print(f"all {args.n} recorded after {elapsed:.1f} s ({args.n / elapsed:.0f} msg/s)")


if __name__ == "__main__":
    asyncio.run(main())
