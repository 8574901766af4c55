"""Configuration: one TOML file plus ``HUB_*`` environment overrides, loaded once.

The result is a frozen, typed :class:`Settings` object that callers pass down; nothing here is
global. Secrets (database and mail passwords, the at-rest keys, the lookup key) are never read
from the TOML file itself: they come from the environment (``HUB_SECTION_KEY``) or from a file
named by ``<key>_file`` that only its owner may read. They are held as ``SecretStr`` so that a
log line or a traceback never shows them.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from hub.errors import ConfigError

ENV_PREFIX = "HUB_"
#: Environment variables with the prefix that are not settings.
RESERVED_ENV = frozenset({"HUB_CONFIG", "HUB_TEST_POSTGRES_URL", "HUB_TEST_KEEP"})
#: Keys that hold secrets: never accepted inline in the TOML file.
SECRET_KEYS: dict[str, frozenset[str]] = {
    "database": frozenset({"password"}),
    "smtp": frozenset({"password"}),
    "imap": frozenset({"password"}),
    "security": frozenset({"at_rest_keys", "lookup_key", "reply_token_key"}),
    "signing": frozenset({"pgp_passphrase", "smime_key_passphrase"}),
    "web": frozenset({"session_secret"}),
}


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HubSection(_Section):
    name: str = "Hub Collections"
    base_url: str = "http://127.0.0.1:8080"
    data_dir: Path = Path("./var")
    default_timezone: str = "Europe/Berlin"
    default_language: Literal["en", "de", "da"] = "en"


class DatabaseSection(_Section):
    url: str = "sqlite+aiosqlite:///./var/hub.db"
    password: SecretStr | None = None
    echo: bool = False
    pool_size: int = Field(default=5, ge=1, le=100)

    @field_validator("url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg:// "
                f"(got {value.split(':', 1)[0]!r})"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _password_out_of_url(cls, data: Any) -> Any:
        """Keep a password given inside the URL as a secret, so repr() never shows it."""
        if not isinstance(data, Mapping) or not isinstance(data.get("url"), str):
            return data
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(data["url"])
        except ArgumentError:
            return data  # the url validator reports it
        if url.password is None:
            return data
        bare = url._replace(password=None).render_as_string(hide_password=False)
        return {"password": url.password, **data, "url": bare}


class SecuritySection(_Section):
    at_rest_active_key: str = "k1"
    #: ``id:base64key`` entries separated by newlines or commas; 32-byte keys (AES-256-GCM).
    at_rest_keys: SecretStr | None = None
    #: base64 32-byte key for the keyed hashes that let us look up an email address.
    lookup_key: SecretStr | None = None
    #: base64 key for the HMAC in per-case reply addresses.
    reply_token_key: SecretStr | None = None


class MailServerSection(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    cafile: Path | None = None
    timeout: float = Field(default=30.0, gt=0)


class SmtpSection(MailServerSection):
    from_address: str = "reminders@hub.invalid"
    reply_domain: str = "hub.invalid"
    #: the outbox relay (hub.outbound.relay): rows claimed per pass, one connection per batch
    relay_batch_size: int = Field(default=50, ge=1, le=10_000)
    #: a claim older than this is taken to belong to a dead relay and is released again;
    #: a live relay stops sending from a batch before its own lease runs out
    relay_lease_seconds: float = Field(default=600.0, gt=0)
    relay_poll_interval_seconds: float = Field(default=5.0, gt=0)
    #: after this many attempts, or this age, a temporarily failing message is marked failed
    relay_max_attempts: int = Field(default=12, ge=1)
    relay_max_age_seconds: float = Field(default=5 * 24 * 3600.0, gt=0)
    #: exponential backoff with full jitter: uniform(0, min(cap, base * 2**(attempts-1)))
    relay_backoff_base_seconds: float = Field(default=60.0, gt=0)
    relay_backoff_cap_seconds: float = Field(default=6 * 3600.0, gt=0)
    #: per recipient domain token bucket; 0 turns the limit off
    relay_domain_rate_per_minute: float = Field(default=120.0, ge=0)
    relay_domain_burst: int = Field(default=20, ge=1)


class ImapSection(MailServerSection):
    port: int = Field(default=993, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "tls"
    mailboxes: tuple[str, ...] = ("INBOX",)
    max_message_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    #: the IMAP fetcher (hub.inbound.fetch) runs in ``hub worker`` only when enabled
    enabled: bool = False
    #: LOGIN, or AUTHENTICATE PLAIN (RFC 4616, sent as an initial response: needs SASL-IR)
    auth: Literal["login", "plain"] = "login"
    #: after the commit: set ``ingested_flag`` on the message, or move it to ``processed_mailbox``
    after_ingest: Literal["flag", "move"] = "flag"
    ingested_flag: str = Field(default="$HubIngested", pattern=r"^\$?[A-Za-z0-9_]+$")
    processed_mailbox: str = "Processed"
    #: UID FETCH ranges; aioimaplib is quadratic on big FETCHes and overflows over ~200 lines
    fetch_batch: int = Field(default=100, ge=1, le=200)
    idle: bool = True
    #: IDLE is re-issued this often (RFC 2177: servers may drop an IDLE after 30 minutes)
    idle_timeout_seconds: float = Field(default=25 * 60.0, gt=0)
    poll_interval_seconds: float = Field(default=60.0, gt=0)
    reconnect_backoff_base_seconds: float = Field(default=1.0, gt=0)
    reconnect_backoff_cap_seconds: float = Field(default=300.0, gt=0)
    #: authserv-ids (RFC 8601) of OUR receiving mail servers, whose ``Authentication-Results``
    #: are believed; any other such header may come from the sender and is ignored. Empty
    #: (the default) believes none: DKIM/DMARC failures then cannot mark a sender unverified,
    #: and each routing decision says so.
    trusted_authserv_ids: tuple[str, ...] = ()


class ImportSection(_Section):
    batch_size: int = Field(default=2000, ge=1, le=100_000)
    default_language: Literal["en", "de", "da"] = "en"


class LoggingSection(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


def _shipped_template_dir() -> Path:
    """The templates the hub ships: the checkout's ``templates/`` when run from a checkout,
    else the copy inside the installed package (``hub/templates``, a symlink in the checkout)."""
    package = Path(__file__).resolve().parent
    checkout = package.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "templates" / "mail").is_dir():
        return checkout / "templates"
    return package / "templates"


class OutboundSection(_Section):
    #: searched first: ``<dir>/<creditor code>/mail/<lang>/`` then ``<dir>/mail/<lang>/``, so
    #: collectors and creditors override single templates without editing the package
    template_dir: Path | None = None
    #: the shipped templates, searched last
    default_template_dir: Path = Field(default_factory=_shipped_template_dir)


class SigningSection(_Section):
    """The hub's own identity: the keys that sign its mail (``hub keys init-signing``)."""

    #: the hub's GnuPG home (debtors' public keys and the hub's secret key); default
    #: ``<hub.data_dir>/gnupg``
    gnupg_home: Path | None = None
    #: full fingerprint of the hub's OpenPGP key (signs PGP/MIME, offered by Autocrypt)
    pgp_fingerprint: str | None = None
    #: passphrase of that key: a secret (HUB_SIGNING_PGP_PASSPHRASE or pgp_passphrase_file)
    pgp_passphrase: SecretStr | None = None
    #: gpg-agent s2k-count for the hub's home; the minimum keeps a signature at ~35 ms instead
    #: of ~700 ms, and costs nothing when the passphrase is a long random secret
    gpg_s2k_count: int | None = Field(default=65536, ge=65536, le=65011712)
    #: the S/MIME signer certificate (PEM) and its private key (PEM, passphrase-protected)
    smime_cert_file: Path | None = None
    smime_key_file: Path | None = None
    smime_key_passphrase: SecretStr | None = None

    def gnupg_home_in(self, data_dir: Path) -> Path:
        return self.gnupg_home if self.gnupg_home is not None else data_dir / "gnupg"


class DunningSection(_Section):
    #: how often the ``dunning`` loop of ``hub worker`` queues what is due
    interval_seconds: float = Field(default=300.0, gt=0)
    #: days the debtor is given to pay, counted from the day a reminder is sent
    pay_within_days: int = Field(default=14, ge=1, le=365)


class ConversationSection(_Section):
    """The hub's own answers to debtors (confirmations, questions) and collectors' replies."""

    #: the hub's automatic answers per case within any 24 hours; a collector's reply is not
    #: counted (a person, not a loop)
    max_answers_per_case_per_day: int = Field(default=3, ge=0, le=100)
    #: "auto": answers go out at once; "collector": each waits for a collector's approval.
    #: A creditor overrides it with ``settings["conversation"]["approval"]``.
    approval: Literal["auto", "collector"] = "auto"
    #: the days within which a disputed claim is reviewed (stated in the acknowledgement)
    dispute_review_days: int = Field(default=14, ge=1, le=365)


class RetentionSection(_Section):
    """How long finished cases keep their personal data (``hub gdpr retention``, worker loop).

    A creditor overrides the period with ``settings["retention"]["closed_case_days"]``.
    """

    #: days after a paid, closed or withdrawn case's closing (or last activity) before the
    #: case is anonymized; 3650 = ten years (commercial and tax record keeping)
    closed_case_days: int = Field(default=3650, ge=1)
    #: True: the worker only logs what it would anonymize
    dry_run: bool = False
    #: how often the ``retention`` loop of ``hub worker`` runs (daily)
    interval_seconds: float = Field(default=24 * 3600.0, gt=0)


class WebSection(_Section):
    """The web application (``hub serve``): listener, TLS, proxies, sessions and lock-out."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    #: PEM certificate chain and key: given both, the hub serves TLS itself (1.2 minimum)
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    #: addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For/-Proto are honoured
    trusted_proxies: tuple[str, ...] = ()
    #: base64 key (32 bytes) for the CSRF tokens: a secret (HUB_WEB_SESSION_SECRET)
    session_secret: SecretStr | None = None
    session_idle_minutes: float = Field(default=30.0, gt=0)
    session_absolute_hours: float = Field(default=12.0, gt=0)
    cookie_name: str = "hub_session"
    #: False only for plain-http development; browsers treat http://127.0.0.1 as secure anyway
    cookie_secure: bool = True
    cookie_samesite: Literal["Strict", "Lax"] = "Strict"
    #: failed logins per account (and per client address) within the window before a lock-out
    lockout_user_threshold: int = Field(default=5, ge=1)
    lockout_ip_threshold: int = Field(default=50, ge=1)
    lockout_window_minutes: float = Field(default=15.0, gt=0)
    lockout_minutes: float = Field(default=15.0, gt=0)
    password_reset_minutes: float = Field(default=30.0, gt=0)
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, gt=0)


class Settings(_Section):
    hub: HubSection = HubSection()
    database: DatabaseSection = DatabaseSection()
    security: SecuritySection = SecuritySection()
    smtp: SmtpSection = SmtpSection()
    imap: ImapSection = ImapSection()
    import_: ImportSection = Field(default=ImportSection(), alias="import")
    logging: LoggingSection = LoggingSection()
    outbound: OutboundSection = OutboundSection()
    signing: SigningSection = SigningSection()
    dunning: DunningSection = DunningSection()
    conversation: ConversationSection = ConversationSection()
    web: WebSection = WebSection()
    retention: RetentionSection = RetentionSection()

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def database_url(self) -> str:
        """The SQLAlchemy URL with the secret password filled in, never to be logged."""
        from sqlalchemy.engine import make_url

        url = make_url(self.database.url)
        if self.database.password is not None and url.password is None:
            url = url.set(password=self.database.password.get_secret_value())
        return url.render_as_string(hide_password=False)


_SECTIONS: dict[str, type[BaseModel]] = {
    name: field.annotation
    for name, field in Settings.model_fields.items()
    if isinstance(field.annotation, type)
}
_SECTION_NAMES = {("import" if name == "import_" else name): name for name in _SECTIONS}


def _read_secret_file(path: Path, key: str) -> str:
    try:
        info = path.stat()
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read secret file {path}: {exc.strerror}") from exc
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{key}: secret file {path} is readable by others "
            f"(mode {stat.S_IMODE(info.st_mode):o}); run: chmod 600 {path}"
        )
    return path.read_text(encoding="utf-8").strip()


def _coerce_env(section_model: type[BaseModel], key: str, raw: str) -> Any:
    annotation = section_model.model_fields[key].annotation
    if annotation is not None and "tuple" in str(annotation):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def _apply_env(data: dict[str, dict[str, Any]], environ: Mapping[str, str]) -> None:
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name in RESERVED_ENV:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        for toml_name, attr in _SECTION_NAMES.items():
            if rest.startswith(toml_name + "_"):
                key = rest[len(toml_name) + 1 :]
                model = _SECTIONS[attr]
                is_secret_file = key.endswith("_file") and key[: -len("_file")] in SECRET_KEYS.get(
                    toml_name, frozenset()
                )
                if is_secret_file:
                    data.setdefault(toml_name, {})[key] = raw
                    break
                if key in model.model_fields:
                    data.setdefault(toml_name, {})[key] = _coerce_env(model, key, raw)
                    break
        else:
            raise ConfigError(f"{name}: unknown setting (no section and key of that name)")


def _resolve_secret_files(data: dict[str, dict[str, Any]], base: Path) -> None:
    for section, values in data.items():
        for key in list(values):
            if not key.endswith("_file"):
                continue
            target = key[: -len("_file")]
            if target not in SECRET_KEYS.get(section, frozenset()):
                continue
            path_value = values.pop(key)
            if target in values:
                continue  # the environment wins over a file
            if not path_value:
                continue
            path = Path(path_value)
            if not path.is_absolute():
                path = base / path
            values[target] = _read_secret_file(path, f"{section}.{key}")


def _reject_inline_secrets(data: Mapping[str, Any]) -> None:
    for section, keys in SECRET_KEYS.items():
        values = data.get(section)
        if not isinstance(values, Mapping):
            continue
        for key in keys:
            if key in values:
                raise ConfigError(
                    f"{section}.{key}: secrets are not accepted in the config file; set "
                    f"{ENV_PREFIX}{section.upper()}_{key.upper()} or {section}.{key}_file "
                    "(a file only its owner can read)"
                )
    database = data.get("database")
    url = database.get("url") if isinstance(database, Mapping) else None
    if isinstance(url, str) and "@" in url.split("://", 1)[-1].split("/", 1)[0]:
        userinfo = url.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[0]
        if ":" in userinfo:
            raise ConfigError(
                "database.url: a password in the URL is not accepted in the config file; set "
                f"{ENV_PREFIX}DATABASE_PASSWORD or database.password_file"
            )


def _format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join("import" if part == "import_" else str(part) for part in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"{loc}: unknown setting (is it a typo?)")
        else:
            lines.append(f"{loc}: {err['msg']}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the TOML file (if any), apply ``HUB_*`` overrides and validate.

    Raises :class:`ConfigError` naming the key and what is wrong.
    """
    env = os.environ if environ is None else environ
    if path is None and env.get("HUB_CONFIG"):
        path = Path(env["HUB_CONFIG"])
    data: dict[str, Any] = {}
    base = Path.cwd()
    if path is not None:
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        base = path.resolve().parent
    _reject_inline_secrets(data)
    for section, values in data.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{section}: expected a [{section}] table")
    _apply_env(data, env)
    _resolve_secret_files(data, base)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc)) from None
