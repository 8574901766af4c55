"""The demo's script: set up an embedded hub under ./var/demo and run the loop once, for real.

Every step uses the hub's real services: secrets are generated, the SQLite database is migrated,
the creditors' cases come in through the CSV import, and what is printed is read back from the
database and the local SMTP server, never canned.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from sqlalchemy import func, select

from hub.cli.worker_cmd import run_loops, worker_loops
from hub.config import Settings, load_settings
from hub.crypto.pgp import PgpKeystore
from hub.demo import data
from hub.demo.debtors import DebtorMachine, ReadMail, read_mail, set_up_machine, stop_agent
from hub.demo.mail_sink import Delivered, start_sink
from hub.demo.replies import Reminder, gist
from hub.demo.reply_loop import ReplyReport, imap_section, reminder_of, run_replies, start_inbox
from hub.outbound.relay import relay_once
from hub.security.roles import Role
from hub.security.secret_files import config_sections, generate_secret_files, write_secret
from hub.services.case_import import import_cases
from hub.services.creditors import create_creditor
from hub.services.csv_rows import RowDefaults, parse_case_file
from hub.services.debtor_keys import add_debtor_key
from hub.services.dunning import queue_due_reminders
from hub.services.hub_identity import (
    create_pgp_identity,
    create_smime_identity,
    new_passphrase,
    open_keystore,
)
from hub.services.reminder_mail import open_mailer
from hub.services.thread_listing import read_thread
from hub.services.users import add_user
from hub.storage import migrate
from hub.storage.db import Database, open_database
from hub.storage.models import Case, Creditor
from hub.web.app import init_app

Say = Callable[[str], None]


@dataclass
class DemoReport:
    """What the demo did, for the caller (and the tests) to check."""

    data_dir: Path
    imported: int = 0
    states: Counter[str] = field(default_factory=Counter)
    delivered: list[Delivered] = field(default_factory=list)
    plaintext_leaks: list[str] = field(default_factory=list)
    replies: ReplyReport | None = None


def _free_port(preferred: int) -> int:
    """``preferred`` if nothing listens there, else any free port on 127.0.0.1."""
    for candidate in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise OSError("no free port on 127.0.0.1")


def _write_config(
    root: Path,
    secrets: dict[str, Path],
    signing: list[str],
    smtp_port: int,
    web_port: int,
    imap: list[str],
) -> Path:
    sections = config_sections(secrets)
    sections["web"] += ['host = "127.0.0.1"', f"port = {web_port}"]
    lines = [
        "# written by `hub demo`: the embedded default with a local SMTP relay",
        "[hub]",
        f'name = "{HUB_NAME}"',
        f'data_dir = "{root}"',
        f'base_url = "http://127.0.0.1:{web_port}"',
        "",
        "[database]",
        f'url = "sqlite+aiosqlite:///{root / "hub.db"}"',
        "",
        *(line for section, entries in sections.items() for line in (f"[{section}]", *entries, "")),
        "[smtp]",
        'host = "127.0.0.1"',
        f"port = {smtp_port}",
        'security = "none"',
        f'from_address = "{FROM_ADDRESS}"',
        'reply_domain = "reply.hub.example.com"',
        "",
        *imap,
        *signing,
    ]
    path = root / "hub.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def _load_demo_data(database: Database, settings: Settings, say: Say) -> int:
    for creditor in data.CREDITORS:
        created = await create_creditor(database, creditor)
        async with database.transaction() as session:
            row = await session.get(Creditor, created.id)
            assert row is not None
            # the demo runs at any hour: its creditors set no quiet hours (the default is 21-08)
            row.settings = {"dunning": {"quiet_hours": ["00:00", "00:00"]}}
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


async def _give_debtors_keys(
    database: Database, settings: Settings, root: Path, say: Say
) -> dict[str, DebtorMachine]:
    machines: dict[str, DebtorMachine] = {}
    keystore = await asyncio.to_thread(open_keystore, settings)
    try:
        for debtor in data.DEBTORS:
            machine, public = await asyncio.to_thread(set_up_machine, debtor, root / "debtors")
            machines[debtor.email] = machine
            if public is None:
                continue
            added = await add_debtor_key(
                database,
                keystore,
                ref=debtor.debtor_ref,
                data=public,
                creditor_code=debtor.creditor,
                supports_aead=debtor.key == "smime-aead",
            )
            say(
                f"{debtor.name} made an {added.kind} key on their machine; the collector added "
                f"its public half ({added.fingerprint[-16:]})"
            )
    finally:
        await asyncio.to_thread(keystore.close)
    return machines


async def _send_reminders(database: Database, settings: Settings, say: Say) -> None:
    mailer = await open_mailer(settings)
    try:
        summary = await queue_due_reminders(database, settings, datetime.now(UTC), mailer=mailer)
    finally:
        await asyncio.to_thread(mailer.close)
    say(f"dunning pass: {summary.summary()}")
    counts = await relay_once(settings, database, "demo-relay")
    say(f"outbox relay: {counts}")


THREAD_FACTS = ("level", "protection", "source", "message_kind", "route_rule", "intent")


async def _show_thread(database: Database, reference: str, say: Say) -> None:
    listing = await read_thread(database, reference, creditor_code=None, actor="system:demo")
    say(f"the thread of case {reference} (state {listing.state}):")
    for entry in listing.entries:
        meta = entry.meta
        facts = [f"{k}={meta[k]}" for k in THREAD_FACTS if meta.get(k) is not None]
        if "from_state" in meta:
            facts.append(f"{meta['from_state']}->{meta['to_state']}")
        say(
            f"   #{entry.seq} {entry.kind} by {entry.actor}"
            + (f" ({', '.join(facts)})" if facts else "")
        )
        if entry.reply_text:
            say(f"      {gist(entry.reply_text)[:90]!r}")


async def _case_states(database: Database) -> Counter[str]:
    async with database.sessions() as session:
        rows = await session.execute(select(Case.state, func.count()).group_by(Case.state))
        return Counter({state: count for state, count in rows.all()})


async def _narrate_delivery(
    machines: dict[str, DebtorMachine], delivered: Delivered, hub_cert: Path, say: Say
) -> ReadMail | None:
    machine = machines.get(delivered.recipient)
    if machine is None:
        say(f"mail to an unknown demo address arrived ({len(delivered.data)} bytes)")
        return None
    mail = await asyncio.to_thread(read_mail, machine, delivered.data, hub_cert)
    first = next((line for line in mail.text.splitlines() if line.strip()), "")
    say(
        f"{machine.debtor.name} ({machine.debtor.language}) received {mail.protection}; "
        f"{mail.signature}; outer subject {mail.outer_subject!r}"
    )
    say(f"   opened: {mail.subject!r}: {first[:90]}")
    return mail


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


FROM_ADDRESS = "reminders@hub.example.com"
HUB_NAME = "Hub demo collections"


def _make_signing_identity(root: Path) -> list[str]:
    """The hub's own OpenPGP key and S/MIME certificate, as `hub keys init-signing` makes them."""
    signing = root / "signing"
    signing.mkdir(mode=0o700)
    pgp_pass, smime_pass = new_passphrase(), new_passphrase()
    keystore = PgpKeystore(root / "gnupg", s2k_count=65536)
    try:
        fingerprint = create_pgp_identity(keystore, HUB_NAME, FROM_ADDRESS, pgp_pass)
    finally:
        keystore.close()
    files = create_smime_identity(signing, HUB_NAME, FROM_ADDRESS, smime_pass)
    write_secret(signing / "pgp_passphrase", pgp_pass.get_secret_value())
    write_secret(signing / "smime_key_passphrase", smime_pass.get_secret_value())
    return [
        "[signing]",
        f'gnupg_home = "{root / "gnupg"}"',
        f'pgp_fingerprint = "{fingerprint}"',
        f'pgp_passphrase_file = "{signing / "pgp_passphrase"}"',
        f'smime_cert_file = "{files.cert}"',
        f'smime_key_file = "{files.key}"',
        f'smime_key_passphrase_file = "{signing / "smime_key_passphrase"}"',
    ]


def _gone_is_fine(function: Callable[..., object], path: str, exc: object) -> None:
    if not (isinstance(exc, tuple) and len(exc) > 1 and isinstance(exc[1], FileNotFoundError)):
        raise RuntimeError(f"cannot remove the previous demo: {path}")


def _prepare(root: Path, say: Say) -> tuple[dict[str, Path], list[str]]:
    if root.exists():
        # a gpg-agent of the previous run may still be removing its sockets
        shutil.rmtree(root, onerror=_gone_is_fine)
        say(f"removed the previous demo in {root}")
    root.mkdir(parents=True)
    secrets = generate_secret_files(root / "secrets")
    say(f"generated the at-rest, lookup and reply-token keys in {root / 'secrets'} (mode 0600)")
    signing = _make_signing_identity(root)
    say("created the hub's own OpenPGP key and S/MIME certificate (it signs every reminder)")
    return secrets, signing


DEMO_USERS = (
    ("collector", Role.COLLECTOR, None, "collector@hub.example.com"),
    ("auditor", Role.AUDITOR, None, "auditor@hub.example.com"),
    ("brightwater", Role.CREDITOR, "BRIGHT", "staff@brightwater.example.com"),
)


async def _create_users(database: Database, say: Say) -> None:
    say("web logins (one-time passwords; the first login asks for a new one and a TOTP app):")
    for username, role, creditor, email in DEMO_USERS:
        _id, password = await add_user(
            database,
            username=username,
            email=email,
            role=role,
            creditor_code=creditor,
            password=None,
            actor="system:demo",
        )
        say(f"   {role.value:<9} {username:<12} {password}")


async def _serve(database: Database, settings: Settings, say: Say) -> None:
    """Serve the web pages, with every loop of ``hub worker`` running, until interrupted."""
    app = init_app(settings, database)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.web.host, settings.web.port)
    await site.start()
    amelia = next(d for d in data.DEBTORS if not d.key)
    say(f"the hub's web pages: {settings.hub.base_url}/  (Ctrl-C ends the demo)")
    say(
        f"the debtor portal: open the link in {amelia.name}'s mail under mailboxes/, "
        f"then give reference {amelia.reference} and postal code {amelia.postal_code}"
    )
    stop = asyncio.Event()
    loops = worker_loops(settings)
    say("the worker runs beside it: " + ", ".join(loop.name for loop in loops))
    worker = asyncio.create_task(run_loops(settings, database, loops, stop, "demo-worker"))
    try:
        await asyncio.Event().wait()
    finally:
        stop.set()
        await worker
        await runner.cleanup()


async def run_demo(root: Path, say: Say, *, serve: bool = False) -> DemoReport:
    root = await asyncio.to_thread(root.resolve)
    secrets, signing = await asyncio.to_thread(_prepare, root, say)
    report = DemoReport(data_dir=root)

    deliveries: asyncio.Queue[Delivered] = asyncio.Queue()
    server, port = await start_sink(root / "mailboxes", deliveries)
    say(f"started the local SMTP relay (aiosmtpd) on 127.0.0.1:{port}")
    inbox = await asyncio.to_thread(start_inbox, root, say)
    try:
        web_port = await asyncio.to_thread(_free_port, 8080)
        imap = imap_section(inbox, root) if inbox is not None else []
        if inbox is not None:
            say(
                f"started the hub's private Dovecot (its inbox) on 127.0.0.1:{inbox.imap_port} "
                f"(IMAP), LMTP on {inbox.lmtp_port}"
            )
        config = await asyncio.to_thread(
            _write_config, root, secrets, signing, port, web_port, imap
        )
        settings = load_settings(config, environ={})
        database = open_database(settings)
        try:
            await migrate.upgrade(database.engine)
            say(f"created the SQLite database {root / 'hub.db'} (schema {migrate.head_revision()})")
            report.imported = await _load_demo_data(database, settings, say)
            async with database.sessions() as session:
                creditors = (await session.execute(select(func.count(Creditor.id)))).scalar_one()
            machines = await _give_debtors_keys(database, settings, root, say)
            await _send_reminders(database, settings, say)
            report.states = await _case_states(database)
            say(
                f"{report.imported} cases of {creditors} creditors: "
                + ", ".join(f"{n} {state}" for state, n in sorted(report.states.items()))
            )
            while not deliveries.empty():
                report.delivered.append(deliveries.get_nowait())
            hub_cert = root / "signing" / "smime-cert.pem"
            reminders: dict[str, Reminder] = {}
            for delivered in report.delivered:
                mail = await _narrate_delivery(machines, delivered, hub_cert, say)
                if mail is not None:
                    reminders[delivered.recipient] = reminder_of(delivered, mail)
            if inbox is not None:
                report.replies = await run_replies(
                    database, settings, inbox, machines, reminders, deliveries, HUB_NAME,
                    hub_cert, say,
                )  # fmt: skip
            await _show_thread(database, data.DEBTORS[0].reference, say)
            for machine in machines.values():
                await asyncio.to_thread(stop_agent, machine)
            await _create_users(database, say)
            report.plaintext_leaks = await asyncio.to_thread(_plaintext_leaks, root / "hub.db")
            if report.plaintext_leaks:
                say(
                    "WARNING: found personal data in clear in the database: "
                    + ", ".join(report.plaintext_leaks)
                )
            else:
                say("checked the database files: no debtor name, email or street in clear text")
            say(f"to look around: HUB_CONFIG={config} hub --help")
            if serve:
                await _serve(database, settings, say)
        finally:
            await database.close()
    finally:
        server.close()
        await server.wait_closed()
        if inbox is not None:
            await asyncio.to_thread(inbox.destroy)
    return report
