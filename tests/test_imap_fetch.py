"""The IMAP fetcher against a real Dovecot, on SQLite and PostgreSQL: exactly once, always."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from dovecot import Dovecot
from imap_support import count_rows, imap_settings, reply, rows
from sqlalchemy import select

from hub.config import Settings
from hub.inbound import fetch as fetch_module
from hub.inbound.fetch import fetch_once, run_fetcher
from hub.inbound.imap_session import ImapError, ImapSession
from hub.inbound.mailbox_lock import mailbox_lock
from hub.storage.db import Database
from hub.storage.models import ImapCheckpoint, QuarantinedMessage


async def test_each_message_stored_once_and_flagged(
    settings: Settings, database: Database, dovecot: Dovecot
) -> None:
    config = imap_settings(settings, dovecot)
    dovecot.deliver(*[reply(n) for n in range(7)])
    counts = await fetch_once(config, database)
    assert (counts.stored, counts.duplicates, counts.quarantined) == (7, 0, 0)
    assert counts.parsed == 7
    stored = await rows(database)
    assert sorted(row.message_id or "" for row in stored) == sorted(
        f"<reply-{n}@example.org>" for n in range(7)
    )
    assert all(row.state == "processed" and b"Ich zahle" in row.raw for row in stored)
    flags = dovecot.flags()
    assert len(flags) == 7
    assert all("$HubIngested" in value and "\\Seen" not in value for value in flags.values())
    again = await fetch_once(config, database)
    assert (again.stored, again.duplicates, again.remarked) == (0, 0, 0)
    assert await count_rows(database) == 7
    async with database.transaction() as session:
        checkpoint = (await session.execute(select(ImapCheckpoint))).scalar_one()
    assert checkpoint.uidvalidity == dovecot.uidvalidity()
    assert checkpoint.last_uid == max(flags)


async def test_move_after_commit(settings: Settings, database: Database, dovecot: Dovecot) -> None:
    config = imap_settings(settings, dovecot, after_ingest="move", processed_mailbox="Processed")
    dovecot.deliver(*[reply(n) for n in range(3)])
    counts = await fetch_once(config, database)
    assert counts.stored == 3
    assert dovecot.count("INBOX") == 0
    assert dovecot.count("Processed") == 3
    assert (await fetch_once(config, database)).stored == 0


async def test_crash_between_commit_and_flag(
    settings: Settings, database: Database, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows are committed, the process dies before flagging: nothing is stored twice."""
    config = imap_settings(settings, dovecot)
    dovecot.deliver(*[reply(n) for n in range(4)])

    class Crash(BaseException):
        pass

    async def crash(self: ImapSession, uids: object, keyword: str) -> None:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(ImapSession, "add_keyword", crash)
        with pytest.raises(Crash):
            await fetch_once(config, database)
    assert await count_rows(database) == 4
    assert all("$HubIngested" not in value for value in dovecot.flags().values())
    counts = await fetch_once(config, database)
    assert (counts.stored, counts.duplicates, counts.remarked) == (0, 0, 4)
    assert await count_rows(database) == 4
    assert all("$HubIngested" in value for value in dovecot.flags().values())


async def test_uidvalidity_change_resyncs_without_duplicates(
    settings: Settings, database: Database, dovecot: Dovecot
) -> None:
    config = imap_settings(settings, dovecot, mailboxes=("Replies",))
    dovecot.create_mailbox("Replies")
    for n in range(3):
        dovecot.save(reply(n), "Replies")
    assert (await fetch_once(config, database)).stored == 3
    before = dovecot.uidvalidity("Replies")
    # the mailbox is recreated on the server with the same messages (no flags) and one more
    dovecot.doveadm("mailbox", "delete", "-u", dovecot.user, "Replies")
    dovecot.create_mailbox("Replies")
    for n in range(4):
        dovecot.save(reply(n), "Replies")
    assert dovecot.uidvalidity("Replies") != before
    counts = await fetch_once(config, database)
    assert (counts.resyncs, counts.stored, counts.duplicates) == (1, 1, 3)
    originals = [row for row in await rows(database) if row.state != "duplicate"]
    assert sorted(row.message_id or "" for row in originals) == sorted(
        f"<reply-{n}@example.org>" for n in range(4)
    )
    assert all(row.raw == b"" for row in await rows(database, "duplicate"))
    assert (await fetch_once(config, database)).stored == 0


async def test_oversize_quarantined_and_the_rest_stored(
    settings: Settings, database: Database, dovecot: Dovecot
) -> None:
    config = imap_settings(settings, dovecot, max_message_bytes=4000)
    dovecot.save(reply(1))
    dovecot.save(reply(2, size=20_000))
    dovecot.save(reply(3))
    counts = await fetch_once(config, database)
    assert (counts.stored, counts.quarantined) == (2, 1)
    async with database.transaction() as session:
        entry = (await session.execute(select(QuarantinedMessage))).scalar_one()
    assert entry.reason == "oversize"
    assert entry.raw is not None and b"<reply-2@example.org>" in entry.raw
    assert b"xxxx" not in entry.raw  # headers only
    assert all("$HubIngested" in value for value in dovecot.flags().values())
    assert (await fetch_once(config, database)).quarantined == 0


async def test_unreadable_message_quarantined_by_the_parse_stage(
    settings: Settings, database: Database, dovecot: Dovecot
) -> None:
    config = imap_settings(settings, dovecot)
    dovecot.save(reply(1))
    dovecot.save(b"\x00\x01 this is no mail message at all\r\n")
    dovecot.save(reply(3))
    counts = await fetch_once(config, database)
    assert (counts.stored, counts.parsed, counts.parse_quarantined) == (3, 2, 1)
    quarantined = await rows(database, "quarantined")
    # (Dovecot stores the NUL byte as 0x80)
    assert len(quarantined) == 1 and b"no mail message" in quarantined[0].raw


@pytest.mark.parametrize(
    ("security", "auth"), [("tls", "login"), ("starttls", "plain"), ("none", "login")]
)
async def test_connection_modes(dovecot: Dovecot, security: str, auth: str) -> None:
    from hub.config import load_settings

    port = dovecot.imaps_port if security == "tls" else dovecot.imap_port
    config = imap_settings(
        load_settings(None, {}), dovecot, port=port, security=security, auth=auth
    )
    dovecot.save(reply(1))
    session = await ImapSession.open(config.imap)
    try:
        status = await session.select("INBOX")
        assert status.uidvalidity == dovecot.uidvalidity()
        assert await session.uid_search("ALL") == sorted(dovecot.flags())
    finally:
        await session.close()


async def test_wrong_certificate_and_password_are_refused(dovecot: Dovecot) -> None:
    from hub.config import load_settings

    base = load_settings(None, {})
    with pytest.raises(ImapError):  # the self-signed certificate is not trusted without cafile
        await ImapSession.open(imap_settings(base, dovecot, cafile=None).imap)
    with pytest.raises(ImapError, match="LOGIN"):
        await ImapSession.open(imap_settings(base, dovecot, password="wrong").imap)


async def test_server_restart_mid_fetch(
    settings: Settings, database: Database, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dovecot stops in the middle of a fetch: the next run stores the rest, none twice."""
    total = 200
    config = imap_settings(settings, dovecot, fetch_batch=10)
    dovecot.deliver(*[reply(n) for n in range(total)])
    original = fetch_module.store_raw

    calls = 0
    second_batch = asyncio.Event()

    async def slow_store(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 15:  # the first batch of 10 is committed
            second_batch.set()
        await asyncio.sleep(0.01)  # so that the stop surely lands in the middle of the run
        return await original(*args)

    monkeypatch.setattr(fetch_module, "store_raw", slow_store)
    task = asyncio.create_task(fetch_once(config, database))
    await asyncio.wait_for(second_batch.wait(), 30)
    await asyncio.to_thread(dovecot.stop)
    with pytest.raises(ImapError):
        await task
    partial = await count_rows(database)
    assert 0 < partial < total
    dovecot.start()
    monkeypatch.setattr(fetch_module, "store_raw", original)
    counts = await fetch_once(config, database)
    assert counts.stored == total - partial
    stored = await rows(database)
    assert len(stored) == total
    assert len({row.message_id for row in stored}) == total
    assert all("$HubIngested" in value for value in dovecot.flags().values())


async def test_run_fetcher_idle_and_reconnect(
    settings: Settings, database: Database, dovecot: Dovecot
) -> None:
    """IDLE brings a new message in seconds (the poll interval is 5 minutes); after a restart
    of the server the fetcher reconnects by itself."""
    config = imap_settings(settings, dovecot, poll_interval_seconds=300)
    dovecot.deliver(reply(1))
    stop = asyncio.Event()
    task = asyncio.create_task(run_fetcher(config, database, stop))

    async def wait_for_rows(n: int, within: float) -> float:
        start = time.monotonic()
        while await count_rows(database) < n:
            assert time.monotonic() - start < within, f"not {n} rows within {within} s"
            assert not task.done()
            await asyncio.sleep(0.02)
        return time.monotonic() - start

    try:
        await wait_for_rows(1, 10)
        await asyncio.sleep(0.3)  # let it enter IDLE
        dovecot.deliver(reply(2))
        latency = await wait_for_rows(2, 5)
        assert latency < 5
        dovecot.restart()
        dovecot.deliver(reply(3))
        await wait_for_rows(3, 15)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    assert await count_rows(database) == 3


async def test_two_fetchers_on_postgres_one_holds_the_mailbox(
    settings: Settings, database: Database, dovecot: Dovecot
) -> None:
    if not database.is_postgres:
        pytest.skip("advisory locks are PostgreSQL's; on SQLite a single worker is assumed")
    config = imap_settings(settings, dovecot)
    dovecot.deliver(*[reply(n) for n in range(60)])
    account = f"{dovecot.user}@127.0.0.1:{dovecot.imaps_port}"
    async with mailbox_lock(database, account, "INBOX") as held:
        assert held
        async with mailbox_lock(database, account, "INBOX") as second:
            assert not second
        blocked = await fetch_once(config, database)
        assert (blocked.locked, blocked.stored) == (1, 0)
    assert await count_rows(database) == 0
    first, second = await asyncio.gather(fetch_once(config, database), fetch_once(config, database))
    assert first.stored + second.stored == 60
    assert first.duplicates + second.duplicates == 0
    stored = await rows(database)
    assert len(stored) == len({row.message_id for row in stored}) == 60


async def test_hub_fetch_once_command(
    database: Database, hub_env: dict[str, str], dovecot: Dovecot
) -> None:
    if database.is_postgres:
        pytest.skip("the command is the same on both backends; its storage is tested above")
    dovecot.deliver(reply(1), reply(2))
    env = {
        **hub_env,
        "HUB_IMAP_HOST": "127.0.0.1",
        "HUB_IMAP_PORT": str(dovecot.imap_port),
        "HUB_IMAP_SECURITY": "starttls",
        "HUB_IMAP_CAFILE": str(dovecot.cafile),
        "HUB_IMAP_USERNAME": dovecot.user,
        "HUB_IMAP_PASSWORD": dovecot.password,
    }
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "hub"), "fetch", "--once",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert "stored=2" in out.decode()
    assert await count_rows(database) == 2
