"""``hub keys generate`` and ``hub keys add-at-rest``: 0600 secret files the config accepts."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hub.config import load_settings
from hub.crypto.at_rest import parse_keyring_text
from hub.storage.db import keyring_from_settings

HUB = str(Path(sys.executable).parent / "hub")
FILES = ("at_rest_keys", "lookup_key", "reply_token_key")


def hub(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    return subprocess.run(
        [HUB, "keys", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generate_writes_owner_only_files_the_config_reads(tmp_path: Path) -> None:
    secrets_dir = tmp_path / "secrets"
    done = hub("generate", "--dir", str(secrets_dir))
    assert done.returncode == 0, done.stderr
    assert mode_of(secrets_dir) == 0o700
    for name in FILES:
        assert mode_of(secrets_dir / name) == 0o600
        content = (secrets_dir / name).read_text().strip()
        assert content not in done.stdout  # keys are never printed
    assert list(parse_keyring_text((secrets_dir / "at_rest_keys").read_text())) == ["k1"]

    config = tmp_path / "hub.toml"
    config.write_text(done.stdout)
    settings = load_settings(config, {})
    assert settings.security.at_rest_active_key == "k1"
    assert settings.security.reply_token_key is not None
    keyring = keyring_from_settings(settings)
    assert keyring.decrypt(keyring.encrypt(b"x", "t.c"), "t.c") == b"x"


def test_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    assert hub("generate", "--dir", str(tmp_path)).returncode == 0
    before = {name: (tmp_path / name).read_bytes() for name in FILES}
    again = hub("generate", "--dir", str(tmp_path))
    assert again.returncode != 0
    assert "refusing to overwrite" in again.stderr
    assert {name: (tmp_path / name).read_bytes() for name in FILES} == before


def test_generate_refuses_when_any_one_file_exists(tmp_path: Path) -> None:
    (tmp_path / "lookup_key").write_text("mine")
    done = hub("generate", "--dir", str(tmp_path))
    assert done.returncode != 0
    assert not (tmp_path / "at_rest_keys").exists()
    assert (tmp_path / "lookup_key").read_text() == "mine"


def test_generate_ignores_a_lax_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        done = hub("generate", "--dir", str(tmp_path / "s"))
    finally:
        os.umask(old)
    assert done.returncode == 0, done.stderr
    assert {mode_of(tmp_path / "s" / name) for name in FILES} == {0o600}


def test_add_at_rest_appends_the_next_key(tmp_path: Path) -> None:
    assert hub("generate", "--dir", str(tmp_path)).returncode == 0
    keys_file = tmp_path / "at_rest_keys"
    original = parse_keyring_text(keys_file.read_text())

    done = hub("add-at-rest", "--file", str(keys_file))
    assert done.returncode == 0, done.stderr
    assert "at_rest_active_key" in done.stdout and '"k2"' in done.stdout
    assert mode_of(keys_file) == 0o600
    keys = parse_keyring_text(keys_file.read_text())
    assert list(keys) == ["k1", "k2"]
    assert keys["k1"] == original["k1"]
    assert keys["k2"] != keys["k1"]

    named = hub("add-at-rest", "--file", str(keys_file), "--id", "2027-q1")
    assert named.returncode == 0, named.stderr
    assert list(parse_keyring_text(keys_file.read_text())) == ["k1", "k2", "2027-q1"]
    assert list(tmp_path.glob(".*tmp")) == []

    # the config accepts the file, with the new key active
    settings = load_settings(
        None,
        {
            "HUB_SECURITY_AT_REST_KEYS_FILE": str(keys_file),
            "HUB_SECURITY_LOOKUP_KEY_FILE": str(tmp_path / "lookup_key"),
            "HUB_SECURITY_AT_REST_ACTIVE_KEY": "2027-q1",
        },
    )
    keyring = keyring_from_settings(settings)
    assert keyring.key_id_of(keyring.encrypt(b"x", "t.c")) == "2027-q1"


@pytest.mark.parametrize(
    ("key_id", "message"), [("k1", "already holds"), ("bad id:", "letters, digits")]
)
def test_add_at_rest_refuses_bad_ids(tmp_path: Path, key_id: str, message: str) -> None:
    assert hub("generate", "--dir", str(tmp_path)).returncode == 0
    keys_file = tmp_path / "at_rest_keys"
    before = keys_file.read_bytes()
    done = hub("add-at-rest", "--file", str(keys_file), "--id", key_id)
    assert done.returncode == 2
    assert message in done.stderr
    assert keys_file.read_bytes() == before


def test_add_at_rest_refuses_a_file_others_can_read(tmp_path: Path) -> None:
    assert hub("generate", "--dir", str(tmp_path)).returncode == 0
    keys_file = tmp_path / "at_rest_keys"
    keys_file.chmod(0o644)
    before = keys_file.read_bytes()
    done = hub("add-at-rest", "--file", str(keys_file))
    assert done.returncode != 0
    assert "chmod 600" in done.stderr
    assert keys_file.read_bytes() == before
