"""``hub ingest`` killed with SIGKILL in the middle of 1,000 messages, restarted, and Dovecot
restarted under it: every message stored exactly once, and every one recorded (no case exists,
so each ends in ``triage``) while the loops run, none left ``stored`` or ``processed``.

Real Dovecot (LMTP delivery), SQLite on disk, the real ``hub`` command in a subprocess of its
own session (so the kill takes its process-pool workers too). Dovecot stopping in the middle
of a fetch inside one pass is covered in test_imap_fetch.py (test_server_restart_mid_fetch).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from dovecot import Dovecot
from imap_support import reply
from sqlalchemy import func, select

from hub.storage.db import Database
from hub.storage.models import ImapCheckpoint, InboundMessage

TOTAL = 1000
HUB = str(Path(sys.executable).parent / "hub")


async def _states(database: Database) -> dict[str, int]:
    async with database.transaction() as session:
        result = await session.execute(
            select(InboundMessage.state, func.count()).group_by(InboundMessage.state)
        )
        return {str(state): int(n) for state, n in result.all()}


async def _start(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    # the log goes to a file: a pipe nobody reads until the end fills up (64 KB, a few hundred
    # messages at INFO), and the hub's next log write then blocks its whole event loop
    with log.open("ab") as stderr:
        return await asyncio.create_subprocess_exec(
            HUB, "ingest", env=env, stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr, start_new_session=True,
        )  # fmt: skip


async def _wait_for(database: Database, done: object, within: float) -> dict[str, int]:
    deadline = time.monotonic() + within
    while True:
        states = await _states(database)
        if done(states):  # type: ignore[operator]
            return states
        assert time.monotonic() < deadline, states
        await asyncio.sleep(0.1)


async def test_sigkill_mid_batch_and_dovecot_restart(
    database: Database, hub_env: dict[str, str], dovecot: Dovecot, tmp_path: Path
) -> None:
    if database.is_postgres:
        pytest.skip("the crash test runs on SQLite on disk; storage on PostgreSQL is tested apart")
    messages = [reply(n) for n in range(TOTAL)]
    for start in range(0, TOTAL, 250):
        dovecot.deliver(*messages[start : start + 250])
    env = {
        **hub_env,
        "HUB_IMAP_HOST": "127.0.0.1",
        "HUB_IMAP_PORT": str(dovecot.imap_port),
        "HUB_IMAP_SECURITY": "starttls",
        "HUB_IMAP_CAFILE": str(dovecot.cafile),
        "HUB_IMAP_USERNAME": dovecot.user,
        "HUB_IMAP_PASSWORD": dovecot.password,
        "HUB_IMAP_FETCH_BATCH": "50",
        "HUB_IMAP_RECONNECT_BACKOFF_BASE_SECONDS": "0.1",
        "HUB_IMAP_RECONNECT_BACKOFF_CAP_SECONDS": "1",
    }
    log = tmp_path / "ingest.log"
    first = await _start(env, log)
    try:
        before = await _wait_for(database, lambda s: sum(s.values()) >= 300, 120)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the whole session: hub and its pool workers
        await first.wait()
    assert sum(before.values()) < TOTAL, "killed too late to be in the middle"
    killed_at = await _states(database)

    second = await _start(env, log)
    try:
        # Dovecot goes away while the restarted ingest is fetching (or idling): it reconnects
        await _wait_for(database, lambda s: sum(s.values()) > sum(killed_at.values()), 60)
        await asyncio.to_thread(dovecot.restart)
        # while the loops run (no SIGTERM drain): the record step keeps up with the stages
        final = await _wait_for(database, lambda s: s.get("triage", 0) >= TOTAL, 240)
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(second.wait(), 60)
        except TimeoutError:
            os.killpg(second.pid, signal.SIGKILL)
            raise
    assert second.returncode == 0, log.read_text(errors="replace")[-2000:]
    assert final == {"triage": TOTAL}, final
    assert await _states(database) == {"triage": TOTAL}
    async with database.transaction() as session:
        ids = list((await session.scalars(select(InboundMessage.message_id))).all())
        checkpoint = (await session.execute(select(ImapCheckpoint))).scalar_one()
        analysed = await session.scalar(
            select(func.count()).where(InboundMessage.analysis.is_not(None))
        )
    assert len(ids) == len(set(ids)) == TOTAL
    assert set(ids) == {f"<reply-{n}@example.org>" for n in range(TOTAL)}
    assert analysed == TOTAL
    flags = dovecot.flags()
    assert len(flags) == TOTAL and all("$HubIngested" in f for f in flags.values())
    assert checkpoint.uidvalidity == dovecot.uidvalidity()
    assert checkpoint.last_uid == max(flags)
