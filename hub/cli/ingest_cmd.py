"""``hub ingest``: fetch the configured IMAP mailboxes and understand every message.

``--once`` drains every mailbox, processes everything stored and prints the counts. Without it
the fetch loop and the process loop run until SIGTERM or SIGINT (the first lets the work in
hand finish, a second cancels), as in ``hub worker``.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import click

from hub.cli.context import CliContext, pass_context, run
from hub.cli.worker_cmd import WorkerLoop, default_worker_id, run_loops
from hub.config import Settings
from hub.inbound.fetch import fetch_once
from hub.inbound.ingest import ingest_once, ingest_runners, process_once
from hub.storage.db import Database

log = logging.getLogger(__name__)


async def _fetch_pass(settings: Settings, database: Database, worker_id: str) -> str:
    return (await fetch_once(settings, database, process=False)).summary()


def ingest_loops() -> list[WorkerLoop]:
    fetch_loop, process_loop = ingest_runners()  # the fetcher wakes the processor
    return [
        WorkerLoop("fetch", fetch_loop, _fetch_pass),
        WorkerLoop("process", process_loop, process_once),
    ]


async def _ingest(ctx: CliContext, once: bool, workers: int | None) -> str:
    settings = ctx.settings()
    async with ctx.database() as database:
        if once:
            return (await ingest_once(settings, database, workers=workers)).summary()
        stop = asyncio.Event()
        main = asyncio.current_task()
        event_loop = asyncio.get_running_loop()

        def on_signal(signum: signal.Signals) -> None:
            if stop.is_set() and main is not None:
                main.cancel()
                return
            log.info("ingest: %s, finishing the current work, then stopping", signum.name)
            stop.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            event_loop.add_signal_handler(signum, on_signal, signum)
        try:
            await run_loops(settings, database, ingest_loops(), stop, default_worker_id())
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                event_loop.remove_signal_handler(signum)
        return "ingest: stopped"


@click.command()
@click.option("--once", is_flag=True, help="Drain every mailbox once, process, print counts.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes for the CPU stages in --once (default: one per core).",
)
@pass_context
def ingest(ctx: CliContext, once: bool, workers: int | None) -> None:
    """Fetch the [imap] mailboxes and run the inbound stages over every message."""
    click.echo(run(_ingest(ctx, once, workers)))
