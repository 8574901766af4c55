"""One fetcher per mailbox: a PostgreSQL session-level advisory lock on (account, mailbox).

The lock lives as long as the database connection that took it, so a fetcher that dies (even
by SIGKILL) releases it when PostgreSQL notices the connection is gone. On SQLite there is no
such lock: a single worker is assumed, and :func:`mailbox_lock` always grants it.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text

from hub.storage.db import Database


def lock_key(account: str, mailbox: str) -> int:
    """A signed 64-bit key (what ``pg_try_advisory_lock(bigint)`` takes) for the mailbox."""
    digest = hashlib.sha256(f"hub-imap\0{account}\0{mailbox}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@asynccontextmanager
async def mailbox_lock(database: Database, account: str, mailbox: str) -> AsyncIterator[bool]:
    """Yield True when this process holds the mailbox, False when another fetcher does."""
    if not database.is_postgres:
        yield True
        return
    key = lock_key(account, mailbox)
    async with database.engine.connect() as conn:
        got = bool(
            (await conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})).scalar()
        )
        await conn.commit()
        try:
            yield got
        finally:
            if got:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                await conn.commit()
