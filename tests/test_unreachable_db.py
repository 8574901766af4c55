"""An unreachable database stops the CLI quickly, with exit 75, a clear message, no password."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

HUB = str(Path(sys.executable).parent / "hub")
PASSWORD = "Pw-Never-Echo-7731"


def _env(url: str, secrets_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(secrets_env)
    env["HUB_DATABASE_URL"] = url
    return env


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+asyncpg://postgres:{PASSWORD}@127.0.0.1:1/x",
        f"postgresql+asyncpg://postgres:{PASSWORD}@no-such-host.invalid:5432/x",
    ],
    ids=["closed-port", "unknown-host"],
)
@pytest.mark.parametrize("command", [["db", "current"], ["db", "upgrade"]])
def test_unreachable_postgres_fails_fast_without_password(
    url: str, command: list[str], secrets_env: dict[str, str]
) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [HUB, *command], env=_env(url, secrets_env), capture_output=True, text=True, timeout=60
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 75, done.stderr
    assert "cannot reach the database" in done.stderr
    assert PASSWORD not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
    assert elapsed < 10, f"took {elapsed:.1f} s"


def test_password_given_separately_is_not_echoed(secrets_env: dict[str, str]) -> None:
    env = _env("postgresql+asyncpg://postgres@127.0.0.1:1/x", secrets_env)
    env["HUB_DATABASE_PASSWORD"] = PASSWORD
    done = subprocess.run(
        [HUB, "db", "current"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 75, done.stderr
    assert "cannot reach the database" in done.stderr
    assert PASSWORD not in done.stderr + done.stdout


def test_sqlite_in_a_directory_that_cannot_exist(
    tmp_path: Path, secrets_env: dict[str, str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    done = subprocess.run(
        [HUB, "db", "current"],
        env=_env(f"sqlite+aiosqlite:///{blocker / 'hub.db'}", secrets_env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 75, done.stderr
    assert "cannot reach the database" in done.stderr
    assert "Traceback" not in done.stderr
    assert blocker.read_text() == "not a directory"
