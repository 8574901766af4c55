"""The demo's second half: the debtors answer, the hub reads its inbox and answers them.

The hub's inbox is a private Dovecot (:mod:`hub.demo.dovecot`). The simulated debtors' replies
(:mod:`hub.demo.replies`) are delivered into it by LMTP as real mail; the hub then runs its real
inbound pipeline once (:func:`hub.inbound.ingest.ingest_once`), and what is narrated is read
back from the database: per message the kind, the crypto verdict, the reply text, the route
rule, the intent and the state change. The relay then sends the hub's answers to the local SMTP
sink, and each debtor's client opens what they got.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from hub.config import Settings
from hub.demo import data
from hub.demo.debtors import DebtorMachine, ReadMail, read_mail
from hub.demo.dovecot import DovecotMissingError, DovecotServer
from hub.demo.mail_sink import Delivered
from hub.demo.replies import (
    Reminder,
    ScriptedReply,
    compose_auto_reply,
    compose_bounce,
    compose_reply,
    gist,
)
from hub.inbound.ingest import ingest_once
from hub.outbound.relay import relay_once
from hub.security.secret_files import write_secret
from hub.storage.db import Database
from hub.storage.models import Case, InboundMessage, OutboxMessage, ThreadEntry

Say = Callable[[str], None]

#: who answers what: (case reference, what they send)
SCRIPT = (
    ("BW-2026-1001", "promise"),
    ("SW-2026-2001", "dispute"),
    ("KC-2026-3001", "installments"),
    ("BW-2026-1002", "out_of_office"),
    ("KC-2026-3002", "bounce"),
)


@dataclass
class ReplyReport:
    """What the reply half did (for the tests)."""

    sent: int = 0
    routed: dict[str, str] = field(default_factory=dict)  # reference -> route rule
    answered: list[str] = field(default_factory=list)  # debtor emails that got an answer
    undeliverable: list[str] = field(default_factory=list)


def start_inbox(root: Path, say: Say) -> DovecotServer | None:
    """The hub's private Dovecot, or None (said clearly) when it is not installed."""
    try:
        server = DovecotServer.create(prefix="hub-demo")
    except DovecotMissingError as exc:
        say(f"NOTE: {exc}; the demo skips the debtors' replies")
        return None
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        say(f"NOTE: the hub's Dovecot did not start ({exc}); the demo skips the debtors' replies")
        return None
    write_secret(root / "secrets" / "imap_password", server.password)
    return server


def imap_section(server: DovecotServer, root: Path) -> list[str]:
    """The [imap] section: plaintext IMAP, which the fetcher accepts on loopback only."""
    return [
        "[imap]",
        "enabled = true",
        'host = "127.0.0.1"',
        f"port = {server.imap_port}",
        'security = "none"',
        f'username = "{server.user}"',
        f'password_file = "{root / "secrets" / "imap_password"}"',
        "idle = false",
        "",
    ]


def _parse(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def reminder_of(delivered: Delivered, mail: ReadMail) -> Reminder:
    """What the debtor's client keeps of a reminder to answer it."""
    outer = _parse(delivered.data)
    date = outer.get("Date")
    received = date.datetime if date is not None and hasattr(date, "datetime") else None
    return Reminder(
        message_id=str(outer["Message-ID"]).strip(),
        reply_to=str(outer.get("Reply-To") or outer["From"]),
        subject=mail.subject,
        text=mail.text,
        received=received or datetime.now(UTC),
    )


async def _bounce_address(database: Database, message_id: str) -> str:
    async with database.sessions() as session:
        row = (
            await session.execute(
                select(OutboxMessage.envelope_from).where(
                    OutboxMessage.message_id.in_([message_id, message_id.strip("<>")])
                )
            )
        ).scalar_one()
    return str(row)


async def _compose_all(
    database: Database,
    settings: Settings,
    machines: dict[str, DebtorMachine],
    reminders: dict[str, Reminder],
    hub_name: str,
) -> list[ScriptedReply]:
    now = datetime.now(UTC)
    by_ref = {d.reference: d for d in data.DEBTORS}
    composed = []
    for reference, what in SCRIPT:
        debtor = by_ref[reference]
        reminder = reminders[debtor.email]
        if what == "bounce":
            address = await _bounce_address(database, reminder.message_id)
            composed.append(compose_bounce(debtor, reminder, address, now))
        elif what == "out_of_office":
            composed.append(compose_auto_reply(debtor, reminder, now))
        else:
            composed.append(
                await asyncio.to_thread(
                    compose_reply,
                    machines[debtor.email],
                    reminder,
                    what,
                    settings.smtp.from_address,
                    hub_name,
                    now,
                )
            )
    return composed


async def _case_marks(database: Database) -> dict[int, tuple[str, int]]:
    """case id -> (state, last thread seq), to tell what the ingest pass added."""
    async with database.sessions() as session:
        rows = await session.execute(
            select(Case.id, Case.state, func.max(ThreadEntry.seq))
            .join(ThreadEntry, ThreadEntry.case_id == Case.id)
            .group_by(Case.id, Case.state)
        )
        return {int(i): (str(s), int(seq or 0)) for i, s, seq in rows.all()}


def _crypto_words(meta: dict[str, Any]) -> str:
    crypto = meta.get("crypto") or {}
    if not crypto.get("encrypted") and not crypto.get("signed"):
        return "plain mail, not signed"
    words = []
    if crypto.get("encrypted"):
        words.append(
            f"{crypto.get('method')} decrypted" if crypto.get("decrypted") else "NOT decrypted"
        )
    if crypto.get("signed"):
        words.append("signature valid" if crypto.get("signature_valid") else "signature INVALID")
        words.append(
            "signer matches From" if crypto.get("signer_matches_from") else "signer does NOT match"
        )
    return ", ".join(words)


async def _narrate_message(
    database: Database, row: InboundMessage, before: dict[int, tuple[str, int]], say: Say
) -> tuple[str | None, str | None]:
    """One line block per inbound message; returns (case reference, route rule)."""
    understood = json.loads(row.understood) if row.understood else {}
    route = row.route or {}
    rule = route.get("rule")
    async with database.sessions() as session:
        entry = await session.get(ThreadEntry, row.thread_entry_id) if row.thread_entry_id else None
        if entry is None:
            say(f"   inbound #{row.id}: not routed to a case (state {row.state}, rule {rule})")
            return None, None
        case = await session.get(Case, entry.case_id)
        assert case is not None
        added = (
            await session.scalars(
                select(ThreadEntry)
                .where(ThreadEntry.case_id == case.id, ThreadEntry.seq > entry.seq)
                .order_by(ThreadEntry.seq)
            )
        ).all()
    meta = dict(entry.meta or {})
    text = str(understood.get("reply_text") or "")
    first = gist(text)
    say(
        f"   inbound #{row.id} -> case {case.reference}: {meta.get('message_kind')} "
        f"({_crypto_words(meta)}); route rule {meta.get('route_rule')}"
    )
    if entry.kind == "inbound":
        say(f"      reply text: {first[:90]!r}")
    state_before = before.get(case.id, (case.state, 0))[0]
    changed = False
    for later in added:
        m = later.meta or {}
        if later.kind == "classification" and m.get("source_entry_id") == entry.id:
            say(
                f"      intent {m.get('intent')} (confidence {float(m.get('confidence', 0)):.2f}"
                + (", a suggestion" if m.get("is_suggestion") else "")
                + ")"
            )
        elif later.kind in ("state_change", "decision") and "from_state" in m:
            changed = True
            say(
                f"      case {m.get('from_state')} -> {m.get('to_state')} "
                f"(rule {m.get('rule')}: {m.get('why')})"
            )
    if entry.kind == "bounce" and meta.get("marked_undeliverable_email_ids"):
        say("      the debtor's address is now marked undeliverable")
    if not changed:
        say(f"      case state stays {state_before}; no answer is owed to this {entry.kind}")
    return case.reference, str(meta.get("route_rule"))


async def run_replies(
    database: Database,
    settings: Settings,
    server: DovecotServer,
    machines: dict[str, DebtorMachine],
    reminders: dict[str, Reminder],
    deliveries: asyncio.Queue[Delivered],
    hub_name: str,
    hub_cert: Path,
    say: Say,
) -> ReplyReport:
    report = ReplyReport()
    composed = await _compose_all(database, settings, machines, reminders, hub_name)
    for reply in composed:
        sender = "" if reply.kind == "bounce" else reply.debtor.email
        await asyncio.to_thread(server.deliver, reply.data, sender=sender)
        how = "PGP/MIME, encrypted and signed" if reply.debtor.key == "pgp" else "plain"
        if reply.kind == "bounce":
            say(
                f"the mail server of {reply.debtor.name} bounced the reminder: a DSN (5.1.1 user "
                "unknown) to that outbox row's bounce address"
            )
        else:
            say(f"{reply.debtor.name} sent {reply.what.replace('_', ' ')} ({how}) to the hub")
        report.sent += 1
    say(f"delivered {report.sent} messages into the hub's inbox by LMTP ({server.count()} there)")

    before = await _case_marks(database)
    counts = await ingest_once(settings, database, workers=1)
    say(f"the hub read its inbox: {counts.summary()}")
    async with database.sessions() as session:
        rows = (await session.scalars(select(InboundMessage).order_by(InboundMessage.id))).all()
    for row in rows:
        reference, rule = await _narrate_message(database, row, before, say)
        if reference is not None and rule is not None:
            report.routed[reference] = rule

    relayed = await relay_once(settings, database, "demo-relay")
    say(f"outbox relay: {relayed}")
    answered: list[Delivered] = []
    while not deliveries.empty():
        answered.append(deliveries.get_nowait())
    names = {d.email: d for d in data.DEBTORS}
    for delivered in answered:
        machine = machines.get(delivered.recipient)
        if machine is None:
            continue
        mail = await asyncio.to_thread(read_mail, machine, delivered.data, hub_cert)
        say(
            f"{names[delivered.recipient].name} got the hub's answer ({mail.protection}; "
            f"{mail.signature})"
        )
        say(f"   opened: {mail.subject!r}: {gist(mail.text)[:90]}")
        report.answered.append(delivered.recipient)
    for reference, what in SCRIPT:
        debtor = next(d for d in data.DEBTORS if d.reference == reference)
        if debtor.email not in report.answered:
            say(f"no answer to {debtor.name} ({what.replace('_', ' ')})")
    return report
