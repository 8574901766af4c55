"""The demo's script: set up an embedded hub under ./var/demo and run the loop once, for real.

Every step uses the hub's real services: secrets are generated, the SQLite database is migrated,
the creditors' cases come in through the CSV import, and what is printed is read back from the
database and the local SMTP server, never canned.
"""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from hub.config import Settings, load_settings
from hub.demo import data
from hub.demo.mail_sink import Delivered, start_sink
from hub.security.secret_files import SECRET_FILES, generate_secret_files
from hub.services.case_import import import_cases
from hub.services.creditors import create_creditor
from hub.services.csv_rows import RowDefaults, parse_case_file
from hub.storage import migrate
from hub.storage.db import Database, open_database
from hub.storage.models import Case, Creditor

Say = Callable[[str], None]


@dataclass
class DemoReport:
    """What the demo did, for the caller (and the tests) to check."""

    data_dir: Path
    imported: int = 0
    states: Counter[str] = field(default_factory=Counter)
    delivered: list[Delivered] = field(default_factory=list)
    plaintext_leaks: list[str] = field(default_factory=list)


def _write_config(root: Path, secrets: dict[str, Path], smtp_port: int) -> Path:
    lines = [
        "# written by `hub demo`: the embedded default with a local SMTP relay",
        "[hub]",
        'name = "Hub demo"',
        f'data_dir = "{root}"',
        "",
        "[database]",
        f'url = "sqlite+aiosqlite:///{root / "hub.db"}"',
        "",
        "[security]",
        'at_rest_active_key = "k1"',
        *(f'{setting} = "{secrets[name]}"' for name, setting in SECRET_FILES.items()),
        "",
        "[smtp]",
        'host = "127.0.0.1"',
        f"port = {smtp_port}",
        'security = "none"',
        'from_address = "reminders@hub.example.com"',
        'reply_domain = "reply.hub.example.com"',
    ]
    path = root / "hub.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def _load_demo_data(database: Database, settings: Settings, say: Say) -> int:
    for creditor in data.CREDITORS:
        await create_creditor(database, creditor)
    say(f"created {len(data.CREDITORS)} creditors: " + ", ".join(c.name for c in data.CREDITORS))
    today = datetime.now(UTC).date()
    parsed = parse_case_file(
        data.cases_csv(today),
        RowDefaults(
            language=settings.import_.default_language, timezone=settings.hub.default_timezone
        ),
    )
    report = await import_cases(
        database, parsed, source="demo-cases.csv", batch_size=settings.import_.batch_size
    )
    say(f"imported the creditors' CSV: {report.summary()}")
    return report.imported


async def _case_states(database: Database) -> Counter[str]:
    async with database.sessions() as session:
        rows = await session.execute(select(Case.state, func.count()).group_by(Case.state))
        return Counter({state: count for state, count in rows.all()})


def _plaintext_leaks(db_path: Path) -> list[str]:
    """Debtor names and addresses found in clear in the database files (should be none)."""
    blobs = b"".join(
        p.read_bytes() for p in (db_path, db_path.with_name(db_path.name + "-wal")) if p.exists()
    )
    leaks = []
    for debtor in data.DEBTORS:
        for value in (debtor.name, debtor.email, debtor.street):
            if value.encode("utf-8") in blobs:
                leaks.append(value)
    return leaks


def _prepare(root: Path, say: Say) -> dict[str, Path]:
    if root.exists():
        shutil.rmtree(root)
        say(f"removed the previous demo in {root}")
    root.mkdir(parents=True)
    secrets = generate_secret_files(root / "secrets")
    say(f"generated the at-rest, lookup and reply-token keys in {root / 'secrets'} (mode 0600)")
    return secrets


async def run_demo(root: Path, say: Say) -> DemoReport:
    root = await asyncio.to_thread(root.resolve)
    secrets = await asyncio.to_thread(_prepare, root, say)
    report = DemoReport(data_dir=root)

    deliveries: asyncio.Queue[Delivered] = asyncio.Queue()
    server, port = await start_sink(root / "mailboxes", deliveries)
    say(f"started the local SMTP relay (aiosmtpd) on 127.0.0.1:{port}")
    try:
        config = await asyncio.to_thread(_write_config, root, secrets, port)
        settings = load_settings(config, environ={})
        database = open_database(settings)
        try:
            await migrate.upgrade(database.engine)
            say(f"created the SQLite database {root / 'hub.db'} (schema {migrate.head_revision()})")
            report.imported = await _load_demo_data(database, settings, say)
            async with database.sessions() as session:
                creditors = (await session.execute(select(func.count(Creditor.id)))).scalar_one()
            report.states = await _case_states(database)
            say(
                f"{report.imported} cases of {creditors} creditors: "
                + ", ".join(f"{n} {state}" for state, n in sorted(report.states.items()))
            )
        finally:
            await database.close()
        while not deliveries.empty():
            report.delivered.append(deliveries.get_nowait())
    finally:
        server.close()
        await server.wait_closed()
    report.plaintext_leaks = await asyncio.to_thread(_plaintext_leaks, root / "hub.db")
    if report.plaintext_leaks:
        say(
            "WARNING: found personal data in clear in the database: "
            + ", ".join(report.plaintext_leaks)
        )
    else:
        say("checked the database files: no debtor name, email or street in clear text")
    say(f"to look around: HUB_CONFIG={config} hub --help")
    return report
