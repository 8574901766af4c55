"""The ``dunning`` loop of ``hub worker``: queue what is due every ``dunning.interval_seconds``.

The hub's identity (signing keys, templates) is loaded once and kept for the loop's life. A
configuration problem (no signing key yet) is logged and tried again at the next interval
instead of stopping the worker, so the relay beside it keeps sending; database and other
temporary failures are retried the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from hub.config import Settings
from hub.errors import ConfigError, TemporaryError
from hub.services.dunning import queue_due_reminders
from hub.services.reminder_mail import ReminderMailer, open_mailer
from hub.storage.db import Database

log = logging.getLogger(__name__)


async def dunning_once(settings: Settings, database: Database, worker_id: str) -> str:
    """One pass (``hub worker --once``): the summary line, or why nothing was done."""
    try:
        mailer = await open_mailer(settings)
    except ConfigError as exc:
        log.error("dunning: not configured: %s", exc)
        return f"not configured: {exc}"
    try:
        summary = await queue_due_reminders(database, settings, datetime.now(UTC), mailer=mailer)
    finally:
        await asyncio.to_thread(mailer.close)
    return summary.summary()


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def run_dunning(
    settings: Settings, database: Database, stop: asyncio.Event, worker_id: str
) -> None:
    """Queue due reminders until ``stop`` is set; the case in hand is finished first."""
    interval = settings.dunning.interval_seconds
    mailer: ReminderMailer | None = None
    log.info("dunning %s: started (every %.0fs)", worker_id, interval)
    try:
        while not stop.is_set():
            try:
                if mailer is None:
                    mailer = await open_mailer(settings)
                await queue_due_reminders(database, settings, datetime.now(UTC), mailer=mailer)
            except ConfigError as exc:
                log.error("dunning: not configured, retrying in %.0fs: %s", interval, exc)
            except (SQLAlchemyError, OSError, TemporaryError) as exc:
                log.error(
                    "dunning: pass failed (%s), retrying in %.0fs", type(exc).__name__, interval
                )
            await _sleep(stop, interval)
    finally:
        if mailer is not None:
            await asyncio.to_thread(mailer.close)
    log.info("dunning %s: stopped", worker_id)
