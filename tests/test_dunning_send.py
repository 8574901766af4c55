"""The whole send path on SQLite and PostgreSQL: cases imported from CSV, debtors' keys added,
``queue_due_reminders``, the relay against an aiosmtpd sink, and what arrived decrypted and
verified with the ``gpg`` and ``openssl`` command lines."""

from __future__ import annotations

import asyncio
import email.policy
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from dunning_support import (
    FROM,
    DebtorWorld,
    HubKeys,
    add_creditor,
    csv_row,
    decoded_text,
    gpg_decrypt,
    hub_settings,
    import_csv,
    make_hub_keys,
    new_world,
    openssl_decrypt_and_verify,
    pgp_payload,
    run,
    start_sink,
)
from relay_support import relay_settings
from sqlalchemy import func, select, update

from hub.config import Settings
from hub.crypto.autocrypt import parse_autocrypt_header
from hub.domain.case_state import CaseState
from hub.outbound.relay import relay_once
from hub.routing.reply_token import parse_bounce_address, reply_token_key
from hub.services.debtor_keys import add_debtor_key
from hub.services.dunning import (
    REMINDER_KIND,
    WITHHELD_KIND,
    queue_due_reminders,
    render_next_reminder,
)
from hub.services.hub_identity import load_identity
from hub.services.reminder_mail import ReminderMailer, open_mailer
from hub.storage.db import Database
from hub.storage.models import Case, OutboxMessage, ThreadEntry

HUB = str(Path(sys.executable).parent / "hub")
GENERIC_SUBJECT = "A new message is waiting for you"


@pytest.fixture(scope="module")
def world() -> Iterator[DebtorWorld]:
    made = new_world()
    made.new_pgp_key("Alice Andersen", "alice@debtor.example")
    made.new_certificate("Bob Berger", "bob@debtor.example")
    made.new_certificate("Gina Gruber", "gina@debtor.example")
    yield made
    made.close()


@pytest.fixture(scope="module")
def hub_keys(world: DebtorWorld) -> Iterator[HubKeys]:
    keys = make_hub_keys(world.root / "hub")
    # the debtors' side knows the hub's public key (from the Autocrypt header, say)
    run("gpg", "--homedir", str(world.gpg_home), "--batch", "--import", stdin=keys.public_key)
    yield keys
    subprocess.run(
        ["gpgconf", "--homedir", str(keys.gnupg_home), "--kill", "gpg-agent"], check=False
    )


@pytest.fixture
def hub(settings: Settings, hub_keys: HubKeys) -> Settings:
    return hub_settings(settings, hub_keys)


@pytest.fixture
async def mailer(hub: Settings) -> Iterator[ReminderMailer]:  # type: ignore[misc]
    made = await open_mailer(hub)
    yield made
    made.close()


def noon_today() -> datetime:
    """A moment after the keys were made (their creation must lie before ``now``)."""
    return datetime.now(UTC) + timedelta(minutes=1)


async def outbox_count(database: Database) -> int:
    async with database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


async def case_by_ref(database: Database, reference: str) -> Case:
    async with database.sessions() as session:
        case = await session.scalar(select(Case).where(Case.reference == reference))
        assert case is not None
        return case


async def entries(database: Database, reference: str, kind: str) -> list[ThreadEntry]:
    case = await case_by_ref(database, reference)
    async with database.sessions() as session:
        return list(
            (
                await session.scalars(
                    select(ThreadEntry)
                    .where(ThreadEntry.case_id == case.id, ThreadEntry.kind == kind)
                    .order_by(ThreadEntry.seq)
                )
            ).all()
        )


async def test_end_to_end_pgp_smime_notice(
    database: Database,
    hub: Settings,
    mailer: ReminderMailer,
    world: DebtorWorld,
    hub_keys: HubKeys,
    tmp_path: Path,
) -> None:
    await add_creditor(database, "NORD", "Nordlicht Energie GmbH")
    await import_csv(
        database,
        hub,
        csv_row("NORD", "PGP-4711", "Alice Andersen", "alice@debtor.example")
        + csv_row("NORD", "SMIME-4712", "Bob Berger", "bob@debtor.example", language="de")
        + csv_row("NORD", "GCM-4713", "Gina Gruber", "gina@debtor.example", language="da")
        + csv_row("NORD", "NOKEY-4714", "Nora Nielsen", "nora@debtor.example", amount="987.65"),
    )
    keystore = mailer.identity.keystore
    pgp = await add_debtor_key(
        database, keystore, ref="PGP-4711", data=world.pgp_public["alice@debtor.example"]
    )
    assert (pgp.kind, pgp.fingerprint, pgp.can_encrypt) == (
        "openpgp",
        world.pgp_fpr["alice@debtor.example"],
        True,
    )
    cbc = await add_debtor_key(
        database, keystore, ref="D-SMIME-4712", data=world.cert["bob@debtor.example"].read_bytes()
    )
    assert (cbc.kind, cbc.supports_aead) == ("smime", False)
    der = run("openssl", "x509", "-in", str(world.cert["gina@debtor.example"]), "-outform", "DER")
    gcm = await add_debtor_key(
        database, keystore, ref="GCM-4713", data=der.stdout, supports_aead=True
    )
    assert gcm.supports_aead

    now = noon_today()
    summary = await queue_due_reminders(database, hub, now, mailer=mailer)
    assert dict(summary.queued) == {"pgp-mime": 1, "smime-cbc": 1, "smime-gcm": 1, "notice": 1}
    assert summary.failed == summary.skipped == 0

    sink, controller = start_sink()
    try:
        counts = await relay_once(relay_settings(hub, controller.port), database, "w1")
    finally:
        controller.stop()
    assert counts.sent == 4

    token_key = reply_token_key(hub.security)
    async with database.sessions() as session:
        rows = {r.message_id: r for r in (await session.scalars(select(OutboxMessage))).all()}
    for delivered in sink.received:
        message = delivered.message
        # the envelope sender names the exact outbox row
        row = rows[str(message["Message-ID"])]
        assert parse_bounce_address(token_key, delivered.mail_from) == row.id
        assert row.envelope_from == delivered.mail_from
        autocrypt = parse_autocrypt_header(str(message["Autocrypt"]))
        assert autocrypt.addr == FROM and autocrypt.prefer_encrypt_mutual
        assert str(message["Auto-Submitted"]) == "auto-generated"

    # OpenPGP: gpg decrypts with Alice's key and finds a good signature by the hub's key
    alice = sink.to("alice@debtor.example")
    assert str(alice.message["Subject"]) == GENERIC_SUBJECT
    assert b"PGP-4711" not in alice.raw and b"Nordlicht" not in alice.raw
    status, plain = gpg_decrypt(world.gpg_home, pgp_payload(alice.message))
    assert "DECRYPTION_OKAY" in status
    assert f"VALIDSIG {hub_keys.fingerprint}" in status and "GOODSIG" in status
    inner = BytesParser(policy=email.policy.default).parsebytes(plain)
    assert inner.get_param("protected-headers") == "v1"
    assert "PGP-4711" in str(inner["Subject"])
    text = decoded_text(inner)  # type: ignore[arg-type]
    assert "Alice Andersen" in text and "PGP-4711" in text and "310.00" in text

    # S/MIME: openssl decrypts with the debtor's key and verifies against the hub's certificate
    for address, reference, oid_name in (
        ("bob@debtor.example", "SMIME-4712", "enveloped-data"),
        ("gina@debtor.example", "GCM-4713", "authEnveloped-data"),
    ):
        delivered = sink.to(address)
        message = delivered.message
        assert message.get_content_type() == "application/pkcs7-mime"
        assert message.get_param("smime-type") == oid_name
        assert str(message["Subject"]) != "" and reference not in str(message["Subject"])
        assert reference.encode() not in delivered.raw
        signed = openssl_decrypt_and_verify(
            delivered.raw,
            world.cert[address],
            world.key[address],
            hub_keys.smime_cert,
            tmp_path,
        )
        inner = BytesParser(policy=email.policy.default).parsebytes(signed)
        assert reference in str(inner["Subject"])
        assert reference in decoded_text(inner)  # type: ignore[arg-type]

    # the notice: nothing personal anywhere, neither in the raw bytes nor decoded
    nora = sink.to("nora@debtor.example")
    decoded = decoded_text(nora.message)
    # (the Autocrypt key data is random base64 that may hold any four letters by chance)
    raw = re.sub(rb"Autocrypt: [^\r]*(\r\n[ \t][^\r]*)*\r\n", b"", nora.raw)
    assert b"Autocrypt" not in raw and b"Message-ID" in raw
    for secret in ("Nora", "Nielsen", "987.65", "987,65", "NOKEY-4714", "Nordlicht", "NORD"):
        assert secret.encode() not in raw, secret
        assert secret not in decoded, secret
    assert "/portal/" in decoded
    assert nora.message["References"] is None

    # the thread records the exact bytes, the case moved on
    for reference, protection in (
        ("PGP-4711", "pgp-mime"),
        ("SMIME-4712", "smime-cbc"),
        ("GCM-4713", "smime-gcm"),
        ("NOKEY-4714", "notice"),
    ):
        case = await case_by_ref(database, reference)
        assert (case.state, case.dunning_level) == (CaseState.REMINDED.value, 1)
        [entry] = await entries(database, reference, REMINDER_KIND)
        assert entry.meta["protection"] == protection and entry.meta["level"] == 1
        assert entry.raw_message == rows[entry.message_id or ""].message
        assert entry.subject is not None and reference in entry.subject
    assert (await entries(database, "PGP-4711", REMINDER_KIND))[0].meta[
        "key_fingerprint"
    ] == world.pgp_fpr["alice@debtor.example"]

    # again: nothing new (level 2 is not due yet, level 1 never twice)
    again = await queue_due_reminders(database, hub, now + timedelta(minutes=5), mailer=mailer)
    assert again.total_queued == 0 and again.not_due == 4
    assert await outbox_count(database) == 4

    # level 2, fourteen days on, follows in the same thread
    later = await queue_due_reminders(database, hub, now + timedelta(days=15), mailer=mailer)
    assert later.total_queued == 4
    second = await entries(database, "PGP-4711", REMINDER_KIND)
    assert [e.meta["level"] for e in second] == [1, 2]
    async with database.sessions() as session:
        row = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.idempotency_key.like("reminder:%:2"))
        )
    assert row is not None


async def test_policies_quiet_hours_and_paused_states(
    database: Database, hub: Settings, mailer: ReminderMailer
) -> None:
    now = noon_today()
    local = now.astimezone(UTC)
    around_now = [
        (local - timedelta(hours=1)).strftime("%H:%M"),
        (local + timedelta(hours=1)).strftime("%H:%M"),
    ]
    await add_creditor(
        database, "STRICT", "Strict Bank AG", {**_no_quiet(), "encryption": "require-encryption"}
    )
    await add_creditor(
        database, "OPEN", "Open Shop Ltd", {**_no_quiet(), "encryption": "opportunistic"}
    )
    await add_creditor(database, "NIGHT", "Night Owl GmbH", {"quiet_hours": around_now})
    await add_creditor(database, "CALM", "Calm Corp")
    await import_csv(
        database,
        hub,
        csv_row("STRICT", "STRICT-1", "Sven Strict", "sven@debtor.example")
        + csv_row("OPEN", "OPEN-1", "Olga Open", "olga@debtor.example")
        + csv_row("NIGHT", "NIGHT-1", "Nils Night", "nils@debtor.example")
        + csv_row("CALM", "DISPUTED-1", "Dora Dispute", "dora@debtor.example")
        + csv_row("CALM", "PROMISED-1", "Paul Promise", "paul@debtor.example")
        + csv_row("CALM", "OPTOUT-1", "Otto Optout", "otto@debtor.example"),
    )
    async with database.transaction() as session:
        await session.execute(
            update(Case).where(Case.reference == "DISPUTED-1").values(state="disputed")
        )
        await session.execute(
            update(Case)
            .where(Case.reference == "PROMISED-1")
            .values(paused_until=now + timedelta(days=3))
        )
        otto = await case_by_ref(database, "OPTOUT-1")
        from hub.storage.models import DebtorEmail

        await session.execute(
            update(DebtorEmail)
            .where(DebtorEmail.debtor_id == otto.debtor_id)
            .values(status="opted_out")
        )

    summary = await queue_due_reminders(database, hub, now, mailer=mailer)
    assert dict(summary.queued) == {"plain": 1}
    assert dict(summary.withheld) == {"no_key": 1, "opted_out": 1}
    assert summary.deferred_quiet == 1
    assert summary.paused == 1  # paused_until; a disputed case is not even scanned
    assert await outbox_count(database) == 1

    # require-encryption without a key: nothing sent, the case says why (once)
    strict = await case_by_ref(database, "STRICT-1")
    assert (strict.state, strict.dunning_level) == ("open", 0)
    [held] = await entries(database, "STRICT-1", WITHHELD_KIND)
    assert held.meta["reason"] == "no_key" and held.meta["level"] == 1
    await queue_due_reminders(database, hub, now + timedelta(minutes=5), mailer=mailer)
    assert len(await entries(database, "STRICT-1", WITHHELD_KIND)) == 1

    # opportunistic: the reminder in clear, with the Autocrypt header
    async with database.sessions() as session:
        row = await session.scalar(select(OutboxMessage))
    assert row is not None
    assert b"OPEN-1" in row.message and b"Autocrypt: " in row.message

    # quiet hours and paused states send nothing, asked for by reference too
    only = await queue_due_reminders(
        database, hub, now, mailer=mailer, case_refs=["NIGHT-1", "DISPUTED-1", "PROMISED-1"]
    )
    assert only.total_queued == 0
    assert dict(only.cases) == {"NIGHT-1": "quiet", "DISPUTED-1": "paused", "PROMISED-1": "paused"}
    for reference in ("NIGHT-1", "DISPUTED-1", "PROMISED-1", "OPTOUT-1"):
        assert (await case_by_ref(database, reference)).dunning_level == 0
    assert await outbox_count(database) == 1

    # a dry run decides the same but stores nothing
    dry = await queue_due_reminders(
        database, hub, now + timedelta(hours=2), mailer=None, dry_run=True
    )
    assert dict(dry.queued) == {"notice": 1}  # NIGHT-1 after its quiet hours, no key
    assert await outbox_count(database) == 1


def _no_quiet() -> dict[str, object]:
    return {"quiet_hours": ["00:00", "00:00"]}


async def test_concurrent_passes_queue_each_level_once(
    database: Database, hub: Settings, mailer: ReminderMailer
) -> None:
    await add_creditor(database, "RACE", "Race Inc")
    await import_csv(
        database,
        hub,
        "".join(
            csv_row("RACE", f"RACE-{i}", f"Rae Racer{i}", f"r{i}@debtor.example") for i in range(6)
        ),
    )
    other = await open_mailer(hub)
    try:
        now = noon_today()
        first, second = await asyncio.gather(
            queue_due_reminders(database, hub, now, mailer=mailer),
            queue_due_reminders(database, hub, now, mailer=other),
        )
    finally:
        other.close()
    assert first.total_queued + second.total_queued == 6
    assert await outbox_count(database) == 6
    async with database.sessions() as session:
        keys = (await session.scalars(select(OutboxMessage.idempotency_key))).all()
        levels = (await session.scalars(select(Case.dunning_level))).all()
    assert len(set(keys)) == 6 and set(levels) == {1}


async def test_render_writes_what_would_be_sent_without_queueing(
    database: Database, hub: Settings, mailer: ReminderMailer, world: DebtorWorld
) -> None:
    await add_creditor(database, "NORD", "Nordlicht Energie GmbH")
    await import_csv(
        database, hub, csv_row("NORD", "PGP-1", "Alice Andersen", "alice@debtor.example")
    )
    await add_debtor_key(
        database,
        mailer.identity.keystore,
        ref="PGP-1",
        data=world.pgp_public["alice@debtor.example"],
    )
    built = await render_next_reminder(database, hub, mailer, "PGP-1", noon_today())
    status, plain = gpg_decrypt(world.gpg_home, pgp_payload(_parse(built.raw)))
    assert "DECRYPTION_OKAY" in status and "GOODSIG" in status
    assert b"PGP-1" in plain
    assert await outbox_count(database) == 0
    case = await case_by_ref(database, "PGP-1")
    assert (case.state, case.dunning_level) == ("open", 0)
    assert await entries(database, "PGP-1", REMINDER_KIND) == []


def _parse(raw: bytes) -> EmailMessage:
    parsed = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    return parsed


def midday_zone() -> str:
    """A time zone where it is about noon now: the command runs outside quiet hours."""
    offset = 12 - datetime.now(UTC).hour
    if offset < -12:
        offset += 24
    if offset == 0:
        return "Etc/GMT"
    # the Etc zones count the other way round (Etc/GMT-2 is UTC+2)
    return f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def _hub(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HUB, *args], env=env, capture_output=True, text=True, timeout=120)


def test_cli_init_signing_add_key_render_and_remind(
    database: Database,
    hub_env: dict[str, str],
    world: DebtorWorld,
    tmp_path: Path,
) -> None:
    env = {**hub_env, "HUB_SMTP_FROM_ADDRESS": FROM, "HUB_SMTP_REPLY_DOMAIN": "hub.example"}
    init = _hub(env, "keys", "init-signing")
    assert init.returncode == 0, init.stderr
    config = tmp_path / "hub.toml"
    config.write_text(init.stdout)
    signing = tomllib.loads(init.stdout)["signing"]
    assert os.stat(signing["pgp_passphrase_file"]).st_mode & 0o077 == 0
    assert os.stat(signing["smime_key_file"]).st_mode & 0o077 == 0
    for secret_file in ("pgp_passphrase_file", "smime_key_passphrase_file"):
        assert Path(signing[secret_file]).read_text().strip() not in init.stdout
    env["HUB_CONFIG"] = str(config)
    from hub.config import load_settings

    identity = load_identity(load_settings(config, env))
    try:
        assert identity.pgp_fingerprint == signing["pgp_fingerprint"]
        assert identity.smime is not None and identity.autocrypt is not None
    finally:
        identity.close()

    assert _hub(env, "creditor", "add", "NORD", "--name", "Nordlicht Energie GmbH",
                "--legal-identity", "Nordlicht Energie GmbH, Hamburg",
                "--iban", "DE89370400440532013000").returncode == 0  # fmt: skip
    cases = tmp_path / "cases.csv"
    cases.write_text(
        "creditor,reference,debtor_ref,name,email,timezone,amount,currency,due_date\n"
        f"NORD,CLI-1,D1,Alice Andersen,alice@debtor.example,{midday_zone()},120.00,EUR,2026-01-15\n"
    )
    assert _hub(env, "import", str(cases)).returncode == 0
    key_file = tmp_path / "alice.asc"
    key_file.write_bytes(world.pgp_public["alice@debtor.example"])
    added = _hub(env, "debtor", "add-key", "CLI-1", str(key_file))
    assert added.returncode == 0, added.stderr
    assert world.pgp_fpr["alice@debtor.example"] in added.stdout

    out = tmp_path / "next.eml"
    rendered = _hub(env, "reminder", "render", "CLI-1", "--out", str(out))
    assert rendered.returncode == 0, rendered.stderr
    # the hub's key is new: the debtor's side learns it from the file's Autocrypt header
    message = _parse(out.read_bytes())
    keydata = parse_autocrypt_header(str(message["Autocrypt"])).keydata
    run("gpg", "--homedir", str(world.gpg_home), "--batch", "--import", stdin=keydata)
    status, plain = gpg_decrypt(world.gpg_home, pgp_payload(message))
    assert "DECRYPTION_OKAY" in status and f"VALIDSIG {signing['pgp_fingerprint']}" in status
    assert b"CLI-1" in plain and "CLI-1" not in str(message["Subject"])

    dry = _hub(env, "remind", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would queue 1 (pgp-mime 1)" in dry.stdout
    done = _hub(env, "remind", "--case", "CLI-1")
    assert done.returncode == 0, done.stderr
    assert "CLI-1: queued:pgp-mime" in done.stdout
    again = _hub(env, "remind")
    assert "queued 0" in again.stdout
    subprocess.run(
        ["gpgconf", "--homedir", str(Path(signing["gnupg_home"])), "--kill", "gpg-agent"],
        check=False,
    )
