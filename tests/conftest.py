"""Shared fixtures: settings, keyrings and real databases (SQLite on disk and PostgreSQL).

Every test that takes ``database`` runs twice, once on SQLite and once on a PostgreSQL database
of its own on 127.0.0.1:5432, created for the test and dropped after it. A PostgreSQL server
that cannot be reached fails those tests: it never skips them.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from dovecot import PASSWORD, Dovecot

from hub.config import Settings, load_settings
from hub.crypto.at_rest import Keyring, generate_key
from hub.demo.dovecot import DovecotMissingError
from hub.storage import migrate
from hub.storage.db import Database, open_database

PG_ADMIN_DSN = os.environ.get(
    "HUB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
PG_HOST_URL = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")


def make_secrets_env() -> dict[str, str]:
    """A fresh set of the secrets the hub needs, as HUB_* variables."""
    return {
        "HUB_SECURITY_AT_REST_KEYS": f"k1:{generate_key()}",
        "HUB_SECURITY_LOOKUP_KEY": generate_key(),
        "HUB_SECURITY_REPLY_TOKEN_KEY": generate_key(),
    }


@pytest.fixture
def secrets_env() -> dict[str, str]:
    return make_secrets_env()


@pytest.fixture
def keyring() -> Keyring:
    return Keyring({"k1": base64.b64decode(generate_key())}, "k1", base64.b64decode(generate_key()))


async def _create_pg_database() -> str:
    name = f"hub_test_{secrets.token_hex(6)}"
    try:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is required at {PG_ADMIN_DSN} and cannot be reached: {exc}")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def _drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
        return
    name = await _create_pg_database()
    try:
        yield f"{PG_HOST_URL}/{name}"
    finally:
        await _drop_pg_database(name)


@pytest.fixture
def settings(db_url: str, secrets_env: dict[str, str], tmp_path: Path) -> Settings:
    env = {**secrets_env, "HUB_DATABASE_URL": db_url, "HUB_HUB_DATA_DIR": str(tmp_path / "var")}
    return load_settings(None, env)


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    """A migrated, empty database on each backend."""
    db = open_database(settings)
    await migrate.upgrade(db.engine)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
def hub_env(
    settings: Settings, secrets_env: dict[str, str], db_url: str
) -> Iterator[dict[str, str]]:
    """Environment for running the ``hub`` command against the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(secrets_env)
    env["HUB_DATABASE_URL"] = db_url
    env["HUB_HUB_DATA_DIR"] = str(settings.hub.data_dir)
    yield env


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[Dovecot]:
    """One private Dovecot per test session (IMAP+STARTTLS, IMAPS, LMTP on loopback ports)."""
    try:
        server = Dovecot.create(password=PASSWORD, prefix="hub-test")
    except DovecotMissingError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def dovecot(dovecot_server: Dovecot) -> Dovecot:
    """The session's Dovecot, running, with an empty INBOX and no other mailboxes."""
    if not (dovecot_server.root / "run" / "master.pid").exists():
        dovecot_server.start()
    dovecot_server.reset()
    return dovecot_server
