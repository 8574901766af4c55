"""Ingestion: the fetch loop and the process loop side by side, or one pass of each.

The fetch loop (:func:`run_fetch_only`) only stores raw bytes and moves the checkpoints; the
process loop (:func:`run_processor`) runs the inbound stages over every ``stored`` message. The
CPU stages run in a process pool (spawned workers, one per core by default), so parsing and
decryption never hold the event loop and use every core; the pool is made once per loop.
Both loops survive a crash at any point: what was stored stays ``stored`` until a processor
records it, and a batch is recorded in one transaction.

After the stages, the process loop records what they understood on the cases
(:func:`hub.services.record_inbound.record_processed`: route, thread entry, classification in
a classifier process pool whose worker loads the models once, automation, answers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from hub.config import Settings
from hub.errors import ConfigError
from hub.inbound.fetch import FetchCounts, fetch_once, run_fetcher
from hub.inbound.pipeline import ProcessCounts, StageEnv, process_stored
from hub.nlp.pool import ClassifierPool
from hub.routing.reply_token import reply_token_key
from hub.services.record_inbound import Classify, RecordCounts, record_processed
from hub.services.reminder_mail import ReminderMailer, open_mailer
from hub.storage.db import Database

log = logging.getLogger(__name__)

#: how often the process loop looks for stored messages when it found none
PROCESS_POLL_SECONDS = 1.0


@contextlib.contextmanager
def stage_pool(workers: int | None = None) -> Iterator[ProcessPoolExecutor | None]:
    """A pool of spawned processes for the CPU stages (None on a single core: a thread does)."""
    count = workers if workers is not None else (os.cpu_count() or 1)
    if count <= 1:
        yield None
        return
    pool = ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("spawn"))
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class RecordTools:
    """What the record step is given: the classifier (a process pool) and the mailer for the
    hub's answers (None when the hub has no signing identity: answers stay owed)."""

    classify: Classify
    mailer: ReminderMailer | None


@contextlib.asynccontextmanager
async def record_tools(settings: Settings) -> AsyncIterator[RecordTools]:
    """The classifier pool (its worker loads the models on first use) and the mailer."""
    reply_token_key(settings.security)  # no key: a configuration error before any message
    mailer: ReminderMailer | None = None
    try:
        mailer = await open_mailer(settings)
    except ConfigError as exc:
        log.warning("inbound: the hub cannot send answers (%s): they stay owed", exc)
    pool = ClassifierPool(workers=1)
    try:
        yield RecordTools(pool.classify, mailer)
    finally:
        await asyncio.to_thread(pool.close)
        if mailer is not None:
            mailer.close()


async def record(settings: Settings, database: Database, tools: RecordTools) -> RecordCounts:
    """Record every understood message on its case (or in triage) and send the answers."""
    return await record_processed(database, settings, tools.classify, tools.mailer)


@dataclass
class IngestCounts:
    fetched: FetchCounts
    processed: ProcessCounts
    recorded: RecordCounts

    def summary(self) -> str:
        return (
            f"{self.fetched.summary()} processed={self.processed.parsed} "
            f"process_quarantined={self.processed.quarantined} {self.recorded.summary()}"
        )


async def ingest_once(
    settings: Settings, database: Database, *, workers: int | None = None
) -> IngestCounts:
    """Fetch every configured mailbox once, then process everything stored (``--once``)."""
    fetched = await fetch_once(settings, database, process=False)
    with stage_pool(workers) as pool:
        processed = await process_stored(database, StageEnv.from_settings(settings), executor=pool)
    async with record_tools(settings) as tools:
        recorded = await record(settings, database, tools)
    return IngestCounts(fetched, processed, recorded)


async def process_once(settings: Settings, database: Database, worker_id: str) -> str:
    """One pass of the process loop (``hub worker --once``): stages, then the record step."""
    counts = await process_stored(database, StageEnv.from_settings(settings))
    async with record_tools(settings) as tools:
        recorded = await record(settings, database, tools)
    return f"processed={counts.parsed} quarantined={counts.quarantined} {recorded.summary()}"


async def run_fetch_only(
    settings: Settings, database: Database, stop: asyncio.Event, worker_id: str
) -> None:
    """The fetch loop without processing (the process loop does that)."""
    await run_fetcher(settings, database, stop, worker_id, process=False)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def run_processor(
    settings: Settings,
    database: Database,
    stop: asyncio.Event,
    worker_id: str,
    *,
    workers: int | None = None,
) -> None:
    """Process stored messages until ``stop`` is set; a database outage is waited out."""
    env = StageEnv.from_settings(settings)
    async with record_tools(settings) as tools:
        with stage_pool(workers) as pool:
            while not stop.is_set():
                try:
                    counts = await process_stored(database, env, executor=pool)
                    recorded = await record(settings, database, tools)
                except (SQLAlchemyError, OSError) as exc:
                    log.warning("inbound: processing paused (%s)", type(exc).__name__)
                    await _sleep(stop, 5 * PROCESS_POLL_SECONDS)
                    continue
                if counts.parsed or counts.quarantined:
                    log.info(
                        "inbound: processed=%d quarantined=%d %s",
                        counts.parsed,
                        counts.quarantined,
                        recorded.summary(),
                    )
                    continue
                await _sleep(stop, PROCESS_POLL_SECONDS)


async def run_ingest(
    settings: Settings, database: Database, stop: asyncio.Event, worker_id: str
) -> None:
    """The fetch loop and the process loop until ``stop`` is set (``hub ingest``)."""
    tasks = [
        asyncio.create_task(run_fetch_only(settings, database, stop, worker_id), name="fetch"),
        asyncio.create_task(run_processor(settings, database, stop, worker_id), name="process"),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            failure = task.exception()
            if failure is not None:
                raise failure
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
