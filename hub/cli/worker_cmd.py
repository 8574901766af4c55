"""``hub worker``: the long-running background loops, stopped gracefully by SIGTERM/SIGINT.

The worker runs a list of named loops side by side (today the outbox relay; the dunning
scheduler and the IMAP fetcher join the list in :func:`worker_loops`). Each loop takes the
settings, the database, a stop event and the worker id, and returns when the event is set after
finishing the item in hand. The first SIGTERM or SIGINT sets the event; a second one cancels
the loops at once. A loop that crashes stops the others and makes the worker exit non-zero, so
a supervisor (systemd, a container runtime) restarts it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import click

from hub.cli.context import CliContext, pass_context, run
from hub.config import Settings
from hub.inbound.fetch import fetch_once
from hub.inbound.ingest import ingest_runners, process_once
from hub.outbound.relay import relay_once, run_relay
from hub.services.dunning_loop import dunning_once, run_dunning
from hub.services.promises_loop import promises_once, run_promises
from hub.services.retention import retention_once, run_retention
from hub.storage.db import Database

log = logging.getLogger(__name__)

LoopRunner = Callable[[Settings, Database, asyncio.Event, str], Coroutine[Any, Any, None]]
OncePass = Callable[[Settings, Database, str], Awaitable[str]]


@dataclass(frozen=True)
class WorkerLoop:
    """One background loop: ``run`` until stopped, or ``once`` for a single pass."""

    name: str
    run: LoopRunner
    once: OncePass


async def _relay_pass(settings: Settings, database: Database, worker_id: str) -> str:
    counts = await relay_once(settings, database, worker_id)
    return (
        f"claimed={counts.claimed} sent={counts.sent} retried={counts.retried} "
        f"failed={counts.failed} deferred={counts.deferred} recovered={counts.recovered}"
    )


async def _fetch_pass(settings: Settings, database: Database, worker_id: str) -> str:
    return (await fetch_once(settings, database)).summary()


def worker_loops(settings: Settings | None = None) -> list[WorkerLoop]:
    """The loops ``hub worker`` runs, in start order (``fetch`` and ``process`` when [imap]
    enabled = true)."""
    # the fetch loop only stores; the process loop runs the inbound stages (a process pool)
    fetch_loop, process_loop = ingest_runners()  # the fetcher wakes the processor
    fetch = [
        WorkerLoop("fetch", fetch_loop, _fetch_pass),
        WorkerLoop("process", process_loop, process_once),
    ]
    return [
        WorkerLoop("relay", run_relay, _relay_pass),
        WorkerLoop("dunning", run_dunning, dunning_once),
        WorkerLoop("promises", run_promises, promises_once),
        WorkerLoop("retention", run_retention, retention_once),
    ] + (fetch if settings is not None and settings.imap.enabled else [])


def default_worker_id() -> str:
    """Host and process id: unique among live workers, new after a restart."""
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


async def run_loops(
    settings: Settings,
    database: Database,
    loops: list[WorkerLoop],
    stop: asyncio.Event,
    worker_id: str,
) -> None:
    """Run ``loops`` until ``stop`` is set; a crashing loop stops the others and re-raises."""
    tasks: dict[asyncio.Task[None], WorkerLoop] = {
        asyncio.create_task(loop.run(settings, database, stop, worker_id), name=loop.name): loop
        for loop in loops
    }
    failure: BaseException | None = None
    pending = set(tasks)
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.cancelled():
                continue
            exc = task.exception()
            if exc is not None and failure is None:
                failure = exc
                log.error(
                    "worker: loop %s crashed (%s); stopping",
                    task.get_name(),
                    type(exc).__name__,
                    exc_info=exc,
                )
                stop.set()
            elif exc is None and not stop.is_set():
                log.warning("worker: loop %s ended on its own", task.get_name())
    if failure is not None:
        raise failure


async def _serve(ctx: CliContext, once: bool, worker_id: str) -> None:
    settings = ctx.settings()
    loops = worker_loops(settings)
    async with ctx.database() as database:
        if once:
            for loop in loops:
                click.echo(f"{loop.name}: {await loop.once(settings, database, worker_id)}")
            return
        stop = asyncio.Event()
        main = asyncio.current_task()
        event_loop = asyncio.get_running_loop()

        def on_signal(signum: signal.Signals) -> None:
            if stop.is_set() and main is not None:
                log.warning("worker: second %s, cancelling", signum.name)
                main.cancel()
                return
            log.info("worker: %s, finishing the current work, then stopping", signum.name)
            stop.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            event_loop.add_signal_handler(signum, on_signal, signum)
        log.info("worker %s: running %s", worker_id, ", ".join(loop.name for loop in loops))
        try:
            await run_loops(settings, database, loops, stop, worker_id)
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                event_loop.remove_signal_handler(signum)
        log.info("worker %s: stopped", worker_id)


@click.command()
@click.option("--once", is_flag=True, help="Run one pass of every loop, then exit.")
@click.option(
    "--worker-id",
    default=None,
    help="Name of this worker in claims (default: host:pid). Claims left under this name by "
    "a previous run are released at start, so never give two live workers the same name.",
)
@pass_context
def worker(ctx: CliContext, once: bool, worker_id: str | None) -> None:
    """Run the background work (outbox relay) until SIGTERM or SIGINT."""
    run(_serve(ctx, once, worker_id or default_worker_id()))
