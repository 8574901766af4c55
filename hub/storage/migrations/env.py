"""Alembic environment: runs on the connection the hub hands over, or on HUB settings."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from hub.storage.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_from_settings() -> None:
    from hub.config import load_settings
    from hub.storage.db import open_database

    async def go() -> None:
        db = open_database(load_settings())
        async with db.engine.begin() as conn:
            await conn.run_sync(_run)
        await db.close()

    asyncio.run(go())


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    _run_from_settings()
