"""The ``promises`` loop of ``hub worker``: settle expired promises and default missed
installments every ``dunning.interval_seconds``.

A failed pass (database unreachable, …) is logged and tried again at the next interval, so the
relay and the dunning loop beside it keep running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from hub.config import Settings
from hub.errors import TemporaryError
from hub.services.plans import check_installments
from hub.services.promises import check_promises
from hub.storage.db import Database

log = logging.getLogger(__name__)


async def promises_once(settings: Settings, database: Database, worker_id: str) -> str:
    """One pass (``hub worker --once``): the summary line."""
    now = datetime.now(UTC)
    summary = await check_promises(database, now)
    defaulted = await check_installments(database, now)
    return f"{summary.summary()} plans_defaulted={defaulted}"


async def run_promises(
    settings: Settings, database: Database, stop: asyncio.Event, worker_id: str
) -> None:
    """Check promises and installments until ``stop`` is set."""
    interval = settings.dunning.interval_seconds
    log.info("promises %s: started (every %.0fs)", worker_id, interval)
    while not stop.is_set():
        try:
            await promises_once(settings, database, worker_id)
        except (SQLAlchemyError, OSError, TemporaryError) as exc:
            log.error("promises: pass failed (%s), retrying in %.0fs", type(exc).__name__, interval)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
    log.info("promises %s: stopped", worker_id)
