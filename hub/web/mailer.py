"""The web application's one mailer: opened on first use, shared under a lock, closed at exit.

Opening a mailer loads the hub's identity (gpg home, S/MIME key): too slow for every request,
and not needed until a collector replies or approves an answer, so it is opened lazily (in a
thread) and kept for the application's lifetime. A mailer serves one mail at a time (its key
cache is not locked), so users take turns through :meth:`LazyMailer.use`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from hub.config import Settings
from hub.services.reminder_mail import ReminderMailer, open_mailer


class LazyMailer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._mailer: ReminderMailer | None = None
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def use(self) -> AsyncIterator[ReminderMailer]:
        async with self._lock:
            if self._mailer is None:
                self._mailer = await open_mailer(self._settings)
            yield self._mailer

    async def close(self) -> None:
        async with self._lock:
            if self._mailer is not None:
                await asyncio.to_thread(self._mailer.close)
                self._mailer = None


MAILER = web.AppKey("mailer", LazyMailer)


def install(app: web.Application, settings: Settings) -> None:
    """Give ``app`` its lazily opened mailer, closed when the application stops."""
    app[MAILER] = LazyMailer(settings)

    async def close_at_exit(app: web.Application) -> AsyncIterator[None]:
        yield
        await app[MAILER].close()

    app.cleanup_ctx.append(close_at_exit)
