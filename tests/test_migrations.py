"""Migrations upgrade, downgrade and upgrade again on both backends, and match the models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.config import Settings
from hub.storage import migrate
from hub.storage.db import open_database
from hub.storage.models import Base

HUB = str(Path(sys.executable).parent / "hub")
MODEL_TABLES = set(Base.metadata.tables)


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        names: list[str] = await conn.run_sync(lambda c: inspect(c).get_table_names())
    return set(names) - {"alembic_version"}


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


async def test_upgrade_downgrade_upgrade(settings: Settings) -> None:
    db = open_database(settings)
    try:
        assert await migrate.current_revision(db.engine) is None
        await migrate.upgrade(db.engine)
        assert await migrate.current_revision(db.engine) == migrate.head_revision()
        assert await migrate.is_up_to_date(db.engine)
        assert await _tables(db.engine) == MODEL_TABLES

        await migrate.downgrade(db.engine, "base")
        assert await migrate.current_revision(db.engine) is None
        assert await _tables(db.engine) == set()

        await migrate.upgrade(db.engine)
        assert await migrate.current_revision(db.engine) == migrate.head_revision()
        assert await _tables(db.engine) == MODEL_TABLES
    finally:
        await db.close()


async def test_models_match_migrations(settings: Settings) -> None:
    db = open_database(settings)
    try:
        await migrate.upgrade(db.engine)
        async with db.engine.connect() as conn:
            differences = await conn.run_sync(_diff)
        assert differences == []
    finally:
        await db.close()


def _hub(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HUB, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


async def test_cli_upgrade_downgrade_upgrade(hub_env: dict[str, str], settings: Settings) -> None:
    head = migrate.head_revision()
    done = _hub(hub_env, "db", "current")
    assert done.returncode == 0, done.stderr
    assert "current: base" in done.stdout

    done = _hub(hub_env, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert f"database at revision {head}" in done.stdout
    assert f"current: {head}" in _hub(hub_env, "db", "current").stdout

    done = _hub(hub_env, "db", "downgrade", "base")
    assert done.returncode == 0, done.stderr
    assert "database at revision base" in done.stdout

    db = open_database(settings)
    try:
        assert await _tables(db.engine) == set()
        done = _hub(hub_env, "db", "upgrade")
        assert done.returncode == 0, done.stderr
        assert await migrate.current_revision(db.engine) == head
        assert await _tables(db.engine) == MODEL_TABLES
    finally:
        await db.close()


def test_commands_refuse_an_unmigrated_database(hub_env: dict[str, str]) -> None:
    done = _hub(hub_env, "audit", "verify")
    assert done.returncode == 2, done.stderr
    assert "hub db upgrade" in done.stderr
