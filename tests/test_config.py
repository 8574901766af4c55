"""Configuration: defaults, typos and bad values named, secrets kept out of TOML and repr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from hub.config import Settings, load_settings
from hub.crypto.at_rest import generate_key
from hub.errors import ConfigError

HUB = [str(Path(sys.executable).parent / "hub")]


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_defaults_load_without_file_or_environment() -> None:
    settings = load_settings(None, {})
    assert settings == Settings()
    assert settings.database.url.startswith("sqlite+aiosqlite:///")
    assert settings.smtp.port == 25
    assert settings.imap.mailboxes == ("INBOX",)
    assert settings.security.at_rest_keys is None


def test_toml_values_are_read(tmp_path: Path) -> None:
    cfg = write(tmp_path / "hub.toml", '[smtp]\nhost = "mail.example.org"\nport = 587\n')
    settings = load_settings(cfg, {})
    assert settings.smtp.host == "mail.example.org"
    assert settings.smtp.port == 587


def test_typo_in_toml_names_the_key(tmp_path: Path) -> None:
    cfg = write(tmp_path / "hub.toml", '[smtp]\nhots = "mail.example.org"\n')
    with pytest.raises(ConfigError, match=r"smtp\.hots: unknown setting"):
        load_settings(cfg, {})


def test_unknown_section_names_it(tmp_path: Path) -> None:
    cfg = write(tmp_path / "hub.toml", "[smtpp]\nhost = 'x'\n")
    with pytest.raises(ConfigError, match=r"smtpp: unknown setting"):
        load_settings(cfg, {})


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[smtp]\nport = 70000\n", "smtp.port"),
        ('[smtp]\nport = "twenty-five"\n', "smtp.port"),
        ('[imap]\nsecurity = "maybe"\n', "imap.security"),
        ('[database]\nurl = "mysql://localhost/hub"\n', "database.url"),
        ("[import]\nbatch_size = 0\n", "import.batch_size"),
    ],
)
def test_bad_value_names_the_key(tmp_path: Path, toml: str, key: str) -> None:
    cfg = write(tmp_path / "hub.toml", toml)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, {})
    assert f"{key}: " in str(info.value)


def test_invalid_toml_syntax_is_a_config_error(tmp_path: Path) -> None:
    cfg = write(tmp_path / "hub.toml", "[smtp\nport = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cfg, {})


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", {})


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("security", "at_rest_keys"),
        ("security", "lookup_key"),
        ("security", "reply_token_key"),
        ("database", "password"),
        ("smtp", "password"),
        ("imap", "password"),
    ],
)
def test_inline_secret_in_toml_is_refused(tmp_path: Path, section: str, key: str) -> None:
    cfg = write(tmp_path / "hub.toml", f'[{section}]\n{key} = "s3cr3t-inline"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, {})
    message = str(info.value)
    assert f"{section}.{key}: secrets are not accepted" in message
    assert "s3cr3t-inline" not in message


def test_password_inside_database_url_in_toml_is_refused(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://hub:pw-in-url@db.example.org/hub"
    cfg = write(tmp_path / "hub.toml", f'[database]\nurl = "{url}"\n')
    with pytest.raises(ConfigError, match=r"database\.url: a password") as info:
        load_settings(cfg, {})
    assert "pw-in-url" not in str(info.value)


def test_secret_file_with_mode_0600_is_accepted(tmp_path: Path) -> None:
    key = generate_key()
    write(tmp_path / "lookup.key", key + "\n", 0o600)
    write(tmp_path / "db.pw", "db-password\n", 0o400)
    # a relative path is taken relative to the config file's directory
    cfg = write(
        tmp_path / "hub.toml",
        '[security]\nlookup_key_file = "lookup.key"\n'
        f'[database]\npassword_file = "{tmp_path / "db.pw"}"\n',
    )
    settings = load_settings(cfg, {})
    assert settings.security.lookup_key is not None
    assert settings.security.lookup_key.get_secret_value() == key
    assert settings.database.password is not None
    assert settings.database.password.get_secret_value() == "db-password"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_secret_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    secret = write(tmp_path / "lookup.key", generate_key(), mode)
    cfg = write(tmp_path / "hub.toml", f'[security]\nlookup_key_file = "{secret}"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, {})
    message = str(info.value)
    assert "security.lookup_key_file" in message
    assert f"mode {mode:o}" in message
    assert "chmod 600" in message


def test_missing_secret_file_names_the_key(tmp_path: Path) -> None:
    cfg = write(tmp_path / "hub.toml", '[security]\nat_rest_keys_file = "absent"\n')
    with pytest.raises(ConfigError, match=r"security\.at_rest_keys_file: cannot read"):
        load_settings(cfg, {})


def test_secret_file_named_by_environment(tmp_path: Path) -> None:
    key = generate_key()
    secret = write(tmp_path / "keys", f"k1:{key}\n")
    settings = load_settings(None, {"HUB_SECURITY_AT_REST_KEYS_FILE": str(secret)})
    assert settings.security.at_rest_keys is not None
    assert settings.security.at_rest_keys.get_secret_value() == f"k1:{key}"


def test_environment_overrides(tmp_path: Path) -> None:
    cfg = write(tmp_path / "hub.toml", "[smtp]\nport = 25\n[imap]\nmailboxes = ['X']\n")
    env = {
        "HUB_DATABASE_URL": "postgresql+asyncpg://hub@db.example.org/hub",
        "HUB_SMTP_PORT": "2525",
        "HUB_IMAP_MAILBOXES": "INBOX, Replies",
        "HUB_HUB_DEFAULT_LANGUAGE": "de",
        "HUB_IMPORT_BATCH_SIZE": "10",
        "HUB_DATABASE_ECHO": "true",
    }
    settings = load_settings(cfg, env)
    assert settings.database.url == "postgresql+asyncpg://hub@db.example.org/hub"
    assert settings.smtp.port == 2525  # the environment wins over the file
    assert settings.imap.mailboxes == ("INBOX", "Replies")
    assert settings.hub.default_language == "de"
    assert settings.import_.batch_size == 10
    assert settings.database.echo is True


def test_bad_environment_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"smtp\.port: "):
        load_settings(None, {"HUB_SMTP_PORT": "not-a-port"})


@pytest.mark.parametrize("name", ["HUB_SMTP_HOTS", "HUB_NOSUCH_THING", "HUB_DATABASE"])
def test_unknown_hub_variable_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match=f"{name}: unknown setting"):
        load_settings(None, {name: "x"})


def test_reserved_and_foreign_variables_are_ignored() -> None:
    settings = load_settings(None, {"HUB_TEST_KEEP": "1", "PATH": "/bin", "HUBX_Y": "1"})
    assert settings == Settings()


def test_settings_are_frozen() -> None:
    settings = load_settings(None, {})
    with pytest.raises(ValidationError):
        settings.smtp.port = 26  # type: ignore[misc]
    with pytest.raises(ValidationError):
        settings.database = settings.database  # type: ignore[misc]
    assert settings.smtp.port == 25


def test_secrets_never_appear_in_repr_or_str() -> None:
    values = {
        "HUB_SECURITY_AT_REST_KEYS": f"k1:{generate_key()}",
        "HUB_SECURITY_LOOKUP_KEY": generate_key(),
        "HUB_SECURITY_REPLY_TOKEN_KEY": generate_key(),
        "HUB_DATABASE_PASSWORD": "db-pass-Qx81",
        "HUB_SMTP_PASSWORD": "smtp-pass-Zr47",
        "HUB_IMAP_PASSWORD": "imap-pass-Wm02",
    }
    env = {**values, "HUB_DATABASE_URL": "postgresql+asyncpg://hub:url-pass-Lk55@db/hub"}
    settings = load_settings(None, env)
    shown = repr(settings) + str(settings) + repr(settings.database) + str(settings.security)
    for secret in [*values.values(), "url-pass-Lk55"]:
        assert secret not in shown
        assert secret.split(":")[-1] not in shown
    # the secrets are still there for the code that needs them
    assert settings.database_url() == "postgresql+asyncpg://hub:db-pass-Qx81@db/hub"
    alone = load_settings(None, {"HUB_DATABASE_URL": env["HUB_DATABASE_URL"]})
    assert "url-pass-Lk55" not in repr(alone) + str(alone)
    assert alone.database_url() == "postgresql+asyncpg://hub:url-pass-Lk55@db/hub"
    assert settings.smtp.password is not None
    assert settings.smtp.password.get_secret_value() == "smtp-pass-Zr47"


def test_explicit_database_password_wins_over_url_password() -> None:
    settings = load_settings(
        None,
        {
            "HUB_DATABASE_URL": "postgresql+asyncpg://hub:from-url@db/hub",
            "HUB_DATABASE_PASSWORD": "explicit",
        },
    )
    assert settings.database_url() == "postgresql+asyncpg://hub:explicit@db/hub"


def _cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["HUB_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    return env


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[smtp]\nhots = "mail.example.org"\n', "smtp.hots: unknown setting"),
        ("[smtp]\nport = 0\n", "smtp.port: "),
        ('[security]\nlookup_key = "inline-Vb63"\n', "security.lookup_key: secrets are not"),
    ],
)
def test_cli_with_bad_config_exits_2_naming_the_key(
    tmp_path: Path, toml: str, expected: str
) -> None:
    cfg = write(tmp_path / "bad.toml", toml)
    done = subprocess.run(
        [*HUB, "--config", str(cfg), "db", "current"],
        env=_cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr
    assert "Traceback" not in done.stderr
    assert "inline-Vb63" not in done.stderr + done.stdout
    assert not (tmp_path / "cli.db").exists()  # nothing was touched


def test_cli_with_unknown_hub_variable_exits_2(tmp_path: Path) -> None:
    env = {**_cli_env(tmp_path), "HUB_SMTP_HOTS": "x"}
    done = subprocess.run(
        [*HUB, "db", "current"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "HUB_SMTP_HOTS: unknown setting" in done.stderr
