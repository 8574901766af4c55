"""The example configuration in examples/ is valid: every key exists and every value passes."""

from __future__ import annotations

from pathlib import Path

from hub.config import load_settings
from hub.security.secret_files import generate_secret_files, write_secret

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "hub.toml"


def test_example_config_loads(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    generate_secret_files(secrets)
    for name in ("db_password", "pgp_passphrase", "smime_key_passphrase", "smtp_password",
                 "imap_password"):  # fmt: skip
        write_secret(secrets / name, "not-a-real-secret\n")
    text = EXAMPLE.read_text(encoding="utf-8").replace("/etc/hub/secrets", str(secrets))
    config = tmp_path / "hub.toml"
    config.write_text(text, encoding="utf-8")
    settings = load_settings(config, environ={})
    assert settings.database.url.startswith("postgresql+asyncpg://")
    assert settings.imap.enabled and settings.imap.mailboxes == ("INBOX",)
    assert settings.smtp.password is not None
    assert settings.smtp.password.get_secret_value() == "not-a-real-secret"
    assert "not-a-real-secret" not in repr(settings)
