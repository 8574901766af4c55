"""The IMAP fetcher: every message of the configured mailboxes stored exactly once.

One pass over a mailbox: SELECT (UIDVALIDITY), find the messages not yet marked as ingested
(``UID SEARCH UNKEYWORD $HubIngested``, or every message left in the mailbox when ingested mail
is moved away), and in UID sets of at most ``imap.fetch_batch``:

1. skip the UIDs already stored under this UIDVALIDITY (a crash after the commit but before
   the flag: they are only marked again);
2. ``UID FETCH (RFC822.SIZE)``; a message over ``imap.max_message_bytes`` gets only its header
   block fetched and is quarantined; the others are fetched with ``BODY.PEEK[]`` (not \\Seen);
3. store the raw bytes and advance the (UIDVALIDITY, last UID) checkpoint in one transaction;
4. only after that commit, flag the messages or move them to ``imap.processed_mailbox``.

A new UIDVALIDITY re-syncs the mailbox: everything is fetched again, and the Message-ID plus
content hash idempotency records the old messages as duplicates, so nothing is stored twice and
nothing is lost. On PostgreSQL a mailbox is worked only under its advisory lock.

:func:`run_fetcher` loops: a pass, then IDLE (or a poll interval) until the server reports news;
after any network or server failure it reconnects with exponential backoff and full jitter. A
pass that stored something is followed by another pass at once, not by IDLE: mail delivered
during a pass is announced (``EXISTS``) in the answers to the pass's own commands, which the
client does not watch, so IDLE would not report it again (measured: the last messages of a
delivery waited up to the IDLE timeout). Only a pass that found nothing new ends in IDLE; the
server reports anything that arrived after that pass's SEARCH when IDLE starts.

No database transaction is open during IMAP I/O: the known UIDs are read in one short
transaction, the bodies fetched outside any, and the rows written in another; after each write
``on_stored`` (the process loop's wake-up) is called.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields

from sqlalchemy.exc import SQLAlchemyError

from hub.config import ImapSection, Settings
from hub.errors import TemporaryError
from hub.inbound.imap_session import ImapError, ImapSession
from hub.inbound.mailbox_lock import mailbox_lock
from hub.inbound.pipeline import StageEnv, process_stored
from hub.inbound.store import (
    MailboxKey,
    known_uids,
    load_checkpoint,
    quarantine_oversize,
    save_checkpoint,
    store_raw,
)
from hub.storage.db import Database

log = logging.getLogger(__name__)


@dataclass
class FetchCounts:
    """What one pass did, summed over the mailboxes."""

    mailboxes: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    #: stored before but not yet flagged/moved (a crash between the commit and the flag)
    remarked: int = 0
    #: mailboxes skipped because another fetcher holds their lock (PostgreSQL)
    locked: int = 0
    resyncs: int = 0
    parsed: int = 0
    parse_quarantined: int = 0

    def add(self, other: FetchCounts) -> None:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def summary(self) -> str:
        return " ".join(f"{field.name}={getattr(self, field.name)}" for field in fields(self))


def _chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


async def _candidates(imap: ImapSession, section: ImapSection) -> list[int]:
    if section.after_ingest == "flag":
        return await imap.uid_search("UNKEYWORD", section.ingested_flag)
    return await imap.uid_search("ALL")


async def mark_ingested(imap: ImapSession, section: ImapSection, uids: Sequence[int]) -> None:
    """Flag or move ``uids``: call this only after their rows are committed."""
    for chunk in _chunks(sorted(uids), section.fetch_batch):
        if section.after_ingest == "flag":
            await imap.add_keyword(chunk, section.ingested_flag)
        else:
            await imap.move(chunk, section.processed_mailbox)


#: called after a commit that stored new rows (wakes the process loop)
OnStored = Callable[[], None]


def _nothing() -> None:
    return None


async def fetch_mailbox(
    imap: ImapSession,
    database: Database,
    section: ImapSection,
    mailbox: str,
    on_stored: OnStored = _nothing,
) -> FetchCounts:
    """One pass over one mailbox (the caller holds its lock)."""
    counts = FetchCounts(mailboxes=1)
    status = await imap.select(mailbox)
    key = MailboxKey(imap.account, mailbox, status.uidvalidity)
    async with database.transaction() as session:
        checkpoint = await load_checkpoint(session, key.account, mailbox)
        if checkpoint is not None and checkpoint.uidvalidity != status.uidvalidity:
            log.warning(
                "imap: %s UIDVALIDITY changed (%s -> %s): re-syncing the mailbox",
                mailbox,
                checkpoint.uidvalidity,
                status.uidvalidity,
            )
            counts.resyncs += 1
    for chunk in _chunks(await _candidates(imap, section), section.fetch_batch):
        async with database.transaction() as session:
            known = await known_uids(session, key, chunk)
        new = [uid for uid in chunk if uid not in known]
        sizes = await imap.fetch_sizes(new) if new else {}
        small = [uid for uid in new if uid in sizes and sizes[uid] <= section.max_message_bytes]
        big = [uid for uid in new if uid in sizes and sizes[uid] > section.max_message_bytes]
        bodies = await imap.fetch_bodies(small) if small else {}
        headers = await imap.fetch_bodies(big, "HEADER") if big else {}
        done = sorted(known)
        # messages expunged meanwhile, or missing from the answer, are simply not marked:
        # the next pass finds them again
        stored_before = counts.stored + counts.quarantined
        async with database.transaction() as session:
            for uid in new:
                if uid in bodies:
                    row = await store_raw(session, key, uid, bodies[uid])
                elif uid in headers:
                    row = await quarantine_oversize(
                        session, key, uid, sizes[uid], section.max_message_bytes, headers[uid]
                    )
                else:
                    continue
                done.append(uid)
                if row.state == "duplicate":
                    counts.duplicates += 1
                elif row.state == "quarantined":
                    counts.quarantined += 1
                else:
                    counts.stored += 1
            if done:
                await save_checkpoint(session, key, max(done))
        if counts.stored + counts.quarantined > stored_before:
            on_stored()
        counts.remarked += len(known)
        if done:
            await mark_ingested(imap, section, done)
    return counts


async def fetch_pass(
    imap: ImapSession,
    database: Database,
    settings: Settings,
    *,
    process: bool = True,
    on_stored: OnStored = _nothing,
) -> FetchCounts:
    """One pass over every configured mailbox, then (``process``) the inbound stages over what
    was stored; ``hub ingest`` and ``hub worker`` leave that to their own process loop."""
    section = settings.imap
    counts = FetchCounts()
    if section.after_ingest == "move":
        await imap.create_mailbox(section.processed_mailbox)
    for mailbox in section.mailboxes:
        async with mailbox_lock(database, imap.account, mailbox) as held:
            if not held:
                log.info("imap: %s is being fetched by another worker; skipped", mailbox)
                counts.locked += 1
                continue
            counts.add(await fetch_mailbox(imap, database, section, mailbox, on_stored))
    if not process:
        return counts
    processed = await process_stored(database, StageEnv.from_settings(settings))
    counts.parsed += processed.parsed
    counts.parse_quarantined += processed.quarantined
    return counts


async def fetch_once(
    settings: Settings, database: Database, *, process: bool = True
) -> FetchCounts:
    """Connect, drain every configured mailbox once, disconnect (``hub fetch --once``)."""
    imap = await ImapSession.open(settings.imap)
    try:
        return await fetch_pass(imap, database, settings, process=process)
    finally:
        await imap.close()


def backoff_delay(section: ImapSection, attempt: int) -> float:
    """Full jitter: uniform(0, min(cap, base * 2**(attempt - 1)))."""
    ceiling = min(
        section.reconnect_backoff_cap_seconds,
        section.reconnect_backoff_base_seconds * 2 ** min(attempt - 1, 30),
    )
    return random.uniform(0, ceiling)


async def _sleep_until(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _serve(
    imap: ImapSession,
    database: Database,
    settings: Settings,
    stop: asyncio.Event,
    healthy: Callable[[], None],
    process: bool,
    on_stored: OnStored,
) -> None:
    section = settings.imap
    use_idle = section.idle and "IDLE" in imap.capabilities
    while not stop.is_set():
        counts = await fetch_pass(imap, database, settings, process=process, on_stored=on_stored)
        healthy()  # a whole pass worked: the next failure starts the backoff afresh
        if counts.stored or counts.quarantined or counts.duplicates:
            log.info("imap: %s", counts.summary())
            # mail that arrived during this pass was announced in the answers to its commands,
            # not to the IDLE that would follow: look again before going idle
            continue
        if stop.is_set():
            return
        if use_idle and imap.selected is not None:
            # IDLE watches the selected mailbox; others are polled at least every interval
            wait = section.idle_timeout_seconds
            if len(section.mailboxes) > 1:
                wait = min(wait, section.poll_interval_seconds)
            await imap.wait_for_news(wait, stop)
        else:
            await _sleep_until(stop, section.poll_interval_seconds)


async def run_fetcher(
    settings: Settings,
    database: Database,
    stop: asyncio.Event,
    worker_id: str = "",
    *,
    process: bool = True,
    on_stored: OnStored = _nothing,
) -> None:
    """Fetch until ``stop`` is set, reconnecting with backoff after any temporary failure;
    ``process=False`` leaves the stored messages to a separate process loop, which
    ``on_stored`` wakes after each commit that stored messages."""
    attempt = 0

    def healthy() -> None:
        nonlocal attempt
        attempt = 0

    while not stop.is_set():
        try:
            imap = await ImapSession.open(settings.imap)
            try:
                await _serve(imap, database, settings, stop, healthy, process, on_stored)
            finally:
                await imap.close()
        except (ImapError, TemporaryError, SQLAlchemyError, OSError) as exc:
            attempt += 1
            delay = backoff_delay(settings.imap, attempt)
            log.warning(
                "imap: %s (%s); reconnecting in %.1f s (attempt %d)",
                type(exc).__name__,
                str(exc)[:200],
                delay,
                attempt,
            )
            await _sleep_until(stop, delay)
