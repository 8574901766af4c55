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

The loops wake each other instead of polling: the fetcher sets ``stored`` after each commit
that stored mail (:func:`ingest_runners` shares one event between the two loops of ``hub
ingest``), and inside the process loop the stages and the record step are two tasks, the
stages setting ``processed`` after each batch's commit. So the record step works beside the
stages (a batch is routed while the next one is decrypted in the pool) instead of waiting until
no message is left ``stored``: under a steady inflow it used to be starved. A poll every
:data:`PROCESS_POLL_SECONDS` remains for work from elsewhere (another process, a crash).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from hub.config import Settings
from hub.errors import ConfigError
from hub.inbound.fetch import FetchCounts, fetch_once, run_fetcher
from hub.inbound.pipeline import ProcessCounts, StageEnv, process_stored
from hub.nlp.pool import ClassifierPool
from hub.routing.reply_token import reply_token_key
from hub.services.classify_ahead import Classify
from hub.services.record_inbound import RecordCounts, record_processed
from hub.services.reminder_mail import ReminderMailer, open_mailer
from hub.storage.db import Database

log = logging.getLogger(__name__)

#: how often the process loop looks for work nobody woke it for (another process, a crash)
PROCESS_POLL_SECONDS = 1.0

#: a loop of ``hub ingest``/``hub worker``: (settings, database, stop, worker id)
LoopRunner = Callable[[Settings, Database, asyncio.Event, str], Coroutine[Any, Any, None]]


def pool_size(workers: int | None = None) -> int:
    """The stage pool's process count: ``workers``, else one per core."""
    return workers if workers is not None else (os.cpu_count() or 1)


@contextlib.contextmanager
def stage_pool(workers: int | None = None) -> Iterator[ProcessPoolExecutor | None]:
    """A pool of spawned processes for the CPU stages (None on a single core: a thread does)."""
    count = pool_size(workers)
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
    settings: Settings,
    database: Database,
    stop: asyncio.Event,
    worker_id: str,
    *,
    stored: asyncio.Event | None = None,
) -> None:
    """The fetch loop without processing (the process loop does that; ``stored`` wakes it)."""
    wake = stored.set if stored is not None else (lambda: None)
    await run_fetcher(settings, database, stop, worker_id, process=False, on_stored=wake)


async def _sleep(stop: asyncio.Event, seconds: float, wake: asyncio.Event | None = None) -> None:
    """Until ``stop`` or ``wake`` is set, or ``seconds`` pass."""
    waiters = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def _started(pool: ProcessPoolExecutor | None, workers: int) -> None:
    """Spawn the pool's workers before the first batch's transaction rather than inside it
    (measured: the first batch held its transaction 5 s while two workers started)."""
    if pool is not None:
        await asyncio.gather(*(asyncio.wrap_future(pool.submit(int)) for _ in range(workers)))


async def _stage_loop(
    database: Database,
    env: StageEnv,
    pool: ProcessPoolExecutor | None,
    workers: int,
    stop: asyncio.Event,
    stored: asyncio.Event,
    processed: asyncio.Event,
) -> None:
    """The inbound stages over every stored message, whenever the fetcher stored some."""
    await _started(pool, workers)
    while not stop.is_set():
        stored.clear()  # set again during the pass: another pass follows at once
        try:
            counts = await process_stored(database, env, executor=pool, on_batch=processed.set)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("inbound: processing paused (%s)", type(exc).__name__)
            await _sleep(stop, 5 * PROCESS_POLL_SECONDS)
            continue
        if counts.parsed or counts.quarantined:
            log.info("inbound: processed=%d quarantined=%d", counts.parsed, counts.quarantined)
            continue
        await _sleep(stop, PROCESS_POLL_SECONDS, stored)


async def _record_loop(
    settings: Settings,
    database: Database,
    tools: RecordTools,
    stop: asyncio.Event,
    processed: asyncio.Event,
) -> None:
    """The record step over every processed message, whenever the stages committed some."""
    while not stop.is_set():
        processed.clear()
        try:
            recorded = await record(settings, database, tools)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("inbound: recording paused (%s)", type(exc).__name__)
            await _sleep(stop, 5 * PROCESS_POLL_SECONDS)
            continue
        if recorded.routed or recorded.triage or recorded.failed or recorded.answers:
            log.info("inbound: %s", recorded.summary())
            continue
        await _sleep(stop, PROCESS_POLL_SECONDS, processed)


async def run_processor(
    settings: Settings,
    database: Database,
    stop: asyncio.Event,
    worker_id: str,
    *,
    workers: int | None = None,
    stored: asyncio.Event | None = None,
) -> None:
    """Process stored messages until ``stop`` is set; a database outage is waited out.

    ``stored`` (set by the fetcher) wakes the stages; without it they poll. After ``stop`` the
    stages finish their batch and the record step then records what they understood."""
    env = StageEnv.from_settings(settings)
    stored = stored if stored is not None else asyncio.Event()
    processed = asyncio.Event()
    async with record_tools(settings) as tools:
        with stage_pool(workers) as pool:
            await _together(
                stages=_stage_loop(
                    database, env, pool, pool_size(workers), stop, stored, processed
                ),
                record=_record_loop(settings, database, tools, stop, processed),
            )
        with contextlib.suppress(SQLAlchemyError, OSError):
            drained = await record(settings, database, tools)
            if drained.routed or drained.triage or drained.failed:
                log.info("inbound: on stopping %s", drained.summary())


async def _together(**loops: Coroutine[Any, Any, None]) -> None:
    """Run ``loops`` side by side; the first to fail cancels the others and is re-raised."""
    tasks = [asyncio.create_task(loop, name=name) for name, loop in loops.items()]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            failure = task.exception()
            if failure is not None:
                raise failure
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def ingest_runners() -> tuple[LoopRunner, LoopRunner]:
    """The fetch loop and the process loop of one process, sharing the ``stored`` wake-up."""
    stored = asyncio.Event()

    async def fetch(settings: Settings, database: Database, stop: asyncio.Event, wid: str) -> None:
        await run_fetch_only(settings, database, stop, wid, stored=stored)

    async def process(
        settings: Settings, database: Database, stop: asyncio.Event, wid: str
    ) -> None:
        await run_processor(settings, database, stop, wid, stored=stored)

    return fetch, process


async def run_ingest(
    settings: Settings, database: Database, stop: asyncio.Event, worker_id: str
) -> None:
    """The fetch loop and the process loop until ``stop`` is set (``hub ingest``)."""
    fetch, process = ingest_runners()
    tasks = [
        asyncio.create_task(fetch(settings, database, stop, worker_id), name="fetch"),
        asyncio.create_task(process(settings, database, stop, worker_id), name="process"),
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
