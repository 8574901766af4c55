"""Opening the database: the async engine, its sessions, and the at-rest keyring it uses.

SQLite (on disk, WAL, foreign keys on) is the embedded default; PostgreSQL through asyncpg
when the URL says so. Sessions never expire their objects on commit, because lazy loading under
asyncio is a trap: load what you need with ``selectinload``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

from hub.config import Settings
from hub.crypto.at_rest import Keyring, keyring_from_secrets
from hub.errors import DatabaseUnavailableError
from hub.storage.types import attach_keyring

log = logging.getLogger(__name__)


def keyring_from_settings(settings: Settings) -> Keyring:
    sec = settings.security
    return keyring_from_secrets(
        sec.at_rest_keys.get_secret_value() if sec.at_rest_keys else None,
        sec.at_rest_active_key,
        sec.lookup_key.get_secret_value() if sec.lookup_key else None,
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_engine(url: str, keyring: Keyring, *, echo: bool = False) -> AsyncEngine:
    """An async engine whose encrypted columns seal with ``keyring``."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            try:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseUnavailableError(
                    f"cannot reach the database {parsed.render_as_string(hide_password=True)}: "
                    f"cannot create {Path(database).parent}: {exc.strerror}"
                ) from None
    else:
        kwargs.update(pool_pre_ping=True, connect_args={"timeout": 10})
    engine = _create_async_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    attach_keyring(engine.sync_engine.dialect, keyring)
    return engine


@dataclass(frozen=True)
class Database:
    """The engine, a session factory and the keyring: what services need to touch storage."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    keyring: Keyring

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One session in one transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def check(self) -> None:
        """Fail with a clear error when the database cannot be reached."""
        try:
            async with asyncio.timeout(15):
                async with self.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except (OperationalError, DBAPIError, OSError, TimeoutError) as exc:
            url = self.engine.url.render_as_string(hide_password=True)
            reason = str(getattr(exc, "orig", exc) or type(exc).__name__).splitlines()[0]
            raise DatabaseUnavailableError(f"cannot reach the database {url}: {reason}") from None

    async def close(self) -> None:
        await self.engine.dispose()


def open_database(settings: Settings, keyring: Keyring | None = None) -> Database:
    keyring = keyring or keyring_from_settings(settings)
    engine = create_engine(settings.database_url(), keyring, echo=settings.database.echo)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    return Database(engine=engine, sessions=sessions, keyring=keyring)
