"""At-rest key rotation on both backends: re-seal under k2, then read with k2 alone."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sample_personal_data import expected_values, populate, raw_values, read_back

from hub.config import Settings
from hub.crypto.at_rest import Keyring, generate_key
from hub.errors import AtRestKeyError
from hub.services.rotate_at_rest import ColumnRotation, rotate_at_rest
from hub.storage.db import Database, open_database
from hub.storage.models import encrypted_columns

HUB = str(Path(sys.executable).parent / "hub")
K2 = os.urandom(32)


@asynccontextmanager
async def reopened(settings: Settings, keyring: Keyring) -> AsyncIterator[Database]:
    db = open_database(settings, keyring)
    try:
        yield db
    finally:
        await db.close()


def with_k2(database: Database, *, keep_k1: bool = True) -> Keyring:
    keys = {"k2": K2}
    if keep_k1:
        keys["k1"] = database.keyring.keys["k1"]
    return Keyring(keys, "k2", database.keyring.lookup_key)


def counts(reports: list[ColumnRotation]) -> dict[str, int]:
    return {r.name: r.resealed for r in reports}


def expected_counts(copies: int = 1) -> dict[str, int]:
    return {name: len(values) * copies for name, values in expected_values().items()}


def key_ids(raw: dict[str, dict[int, bytes]], keyring: Keyring) -> set[str]:
    return {keyring.key_id_of(blob) for column in raw.values() for blob in column.values()}


async def test_rotation_lets_a_keyring_without_k1_read_everything(
    database: Database, settings: Settings
) -> None:
    await populate(database)
    assert await read_back(database) == expected_values()
    before = await raw_values(database)
    assert key_ids(before, database.keyring) == {"k1"}
    assert set(before) == {f"{t}.{c}" for t, c in encrypted_columns()}

    async with reopened(settings, with_k2(database)) as db2:
        reports = await rotate_at_rest(db2, batch=2)
        assert counts(reports) == expected_counts()
        assert all(r.by_key == ({"k1": r.resealed} if r.resealed else {}) for r in reports)
        after = await raw_values(db2)

    assert key_ids(after, database.keyring) == {"k2"}
    for name, rows in before.items():
        assert set(after[name]) == set(rows)  # same rows, each with a new ciphertext
        assert all(after[name][pk] != blob for pk, blob in rows.items())

    async with reopened(settings, with_k2(database, keep_k1=False)) as only_k2:
        assert await read_back(only_k2) == expected_values()

    # and the old keyring alone no longer reads anything
    with pytest.raises(AtRestKeyError, match="unknown at-rest key 'k2'"):
        await read_back(database)


async def test_dry_run_changes_nothing(database: Database, settings: Settings) -> None:
    await populate(database)
    before = await raw_values(database)
    async with reopened(settings, with_k2(database)) as db2:
        reports = await rotate_at_rest(db2, dry_run=True)
        assert counts(reports) == expected_counts()
        assert await raw_values(db2) == before
    assert await read_back(database) == expected_values()


async def test_second_rotation_is_a_no_op(database: Database, settings: Settings) -> None:
    await populate(database)
    async with reopened(settings, with_k2(database)) as db2:
        first = await rotate_at_rest(db2)
        assert sum(counts(first).values()) == sum(expected_counts().values())
        rotated = await raw_values(db2)
        second = await rotate_at_rest(db2)
        assert set(counts(second).values()) == {0}
        assert all(not r.by_key and not r.changed_meanwhile for r in second)
        assert await raw_values(db2) == rotated


async def test_rotation_resumes_after_a_crash(database: Database, settings: Settings) -> None:
    await populate(database, "-a")
    await populate(database, "-b")
    total = sum(expected_counts(copies=2).values())
    batches = 0

    def crash_after_three_batches(_report: ColumnRotation) -> None:
        nonlocal batches
        batches += 1
        if batches == 3:
            raise KeyboardInterrupt("simulated crash")

    async with reopened(settings, with_k2(database)) as db2:
        with pytest.raises(KeyboardInterrupt):
            await rotate_at_rest(db2, batch=1, progress=crash_after_three_batches)
        halfway = await raw_values(db2)
        done_before_crash = sum(
            1 for col in halfway.values() for blob in col.values() if blob[2:4] == b"k2"
        )
        assert done_before_crash == 3  # three committed batches of one row each

        resumed = await rotate_at_rest(db2, batch=7)
        assert sum(counts(resumed).values()) == total - done_before_crash
        assert key_ids(await raw_values(db2), db2.keyring) == {"k2"}

    async with reopened(settings, with_k2(database, keep_k1=False)) as only_k2:
        values = await read_back(only_k2)
    assert {name: len(v) for name, v in values.items()} == expected_counts(copies=2)


async def test_a_value_no_key_opens_stops_the_rotation(
    database: Database, settings: Settings
) -> None:
    await populate(database)
    async with reopened(settings, with_k2(database, keep_k1=False)) as db2:
        with pytest.raises(AtRestKeyError, match=r"debtors\.name row \d+: .*unknown at-rest key"):
            await rotate_at_rest(db2)
        with pytest.raises(AtRestKeyError):
            await rotate_at_rest(db2, dry_run=True)
    assert key_ids(await raw_values(database), database.keyring) == {"k1"}


@pytest.fixture
def k2_env(hub_env: dict[str, str]) -> Iterator[dict[str, str]]:
    env = dict(hub_env)
    env["HUB_SECURITY_AT_REST_KEYS"] += f",k2:{generate_key()}"
    env["HUB_SECURITY_AT_REST_ACTIVE_KEY"] = "k2"
    yield env


async def test_cli_rotate_at_rest(database: Database, k2_env: dict[str, str]) -> None:
    await populate(database)

    def hub(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [HUB, "keys", "rotate-at-rest", *args],
            env=k2_env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    dry = hub("--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "debtor_emails.address" in dry.stdout
    assert "would re-encrypt 2  (from k1: 2)" in dry.stdout
    total = sum(expected_counts().values())
    assert f"total: would re-encrypt {total} values" in dry.stdout
    assert key_ids(await raw_values(database), database.keyring) == {"k1"}

    done = hub("--batch", "3")
    assert done.returncode == 0, done.stderr
    assert f"total: re-encrypted {total} values" in done.stdout
    assert key_ids(await raw_values(database), database.keyring) == {"k2"}

    again = hub()
    assert again.returncode == 0, again.stderr
    assert "total: re-encrypted 0 values" in again.stdout
