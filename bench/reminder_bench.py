"""Reminders per second through ``queue_due_reminders``, beside the bare cost of the same crypto.

    .venv/bin/python bench/reminder_bench.py [-n 200] [--database-url URL]

Three creditors with N due cases each (imported through the real CSV importer into a fresh
SQLite database, or ``--database-url`` for an empty PostgreSQL one): ``opportunistic`` debtors
without a key (plain reminders), debtors with an OpenPGP key (PGP/MIME, signed and encrypted),
debtors with an S/MIME certificate (signed, AES-256-CBC). Each group goes through
``queue_due_reminders``: lock, re-check, key choice, render, compose, protect, thread entry and
outbox row, one transaction per case. Beside each, the bare work alone on the same ~4 KB body:
for plain, render + compose without protection or storage; for PGP, ``gpg --sign --encrypt``
on the command line (one process per message, as in bench/crypto_bench.py); for S/MIME,
``cryptography`` alone (detached signature + EnvelopedData, no MIME). Prints rates and ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import pkcs7
from pydantic import SecretStr
from sqlalchemy import update

from hub.config import Settings, load_settings
from hub.crypto.at_rest import generate_key
from hub.crypto.smime_certs import load_signing_key
from hub.outbound.compose import compose_reminder, to_bytes
from hub.services.case_import import import_cases
from hub.services.case_rows import RowDefaults
from hub.services.creditors import CreditorData, create_creditor
from hub.services.csv_rows import parse_case_file
from hub.services.debtor_keys import add_debtor_key
from hub.services.dunning import queue_due_reminders
from hub.services.hub_identity import create_pgp_identity, create_smime_identity, open_keystore
from hub.services.reminder_mail import MailPlan, ReminderMailer, open_mailer
from hub.storage import migrate
from hub.storage.db import Database, open_database
from hub.storage.models import Creditor

FROM = "reminders@hub.example"
PASS = "bench passphrase"
IBAN = "DE89370400440532013000"
HEADER = "creditor,reference,debtor_ref,name,email,timezone,amount,currency,due_date\n"
NEVER_QUIET = ["00:00", "00:00"]


def run(*command: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(command, input=stdin, capture_output=True, check=True, timeout=120)


def debtor_pgp_key(home: Path) -> tuple[str, bytes, str]:
    home.mkdir(mode=0o700)
    out = run(
        "gpg", "--homedir", str(home), "--batch", "--status-fd", "2", "--pinentry-mode",
        "loopback", "--passphrase", "", "--quick-gen-key", "Pat <pgp@debtor.example>",
        "ed25519", "sign", "1y",
    ).stderr.decode()  # fmt: skip
    match = re.search(r"KEY_CREATED [BP] ([0-9A-F]{40})", out)
    assert match
    fpr = match.group(1)
    run(
        "gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", "--passphrase",
        "", "--quick-add-key", fpr, "cv25519", "encr", "1y",
    )  # fmt: skip
    return fpr, run("gpg", "--homedir", str(home), "--armor", "--export", fpr).stdout, str(home)


def debtor_cert(directory: Path) -> Path:
    cert = directory / "smime.crt"
    run(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        "-subj", "/CN=Sam", "-addext", "subjectAltName=email:smime@debtor.example",
        "-addext", "keyUsage=digitalSignature,keyEncipherment",
        "-addext", "extendedKeyUsage=emailProtection",
        "-keyout", str(directory / "smime.key"), "-out", str(cert),
    )  # fmt: skip
    return cert


async def setup(database: Database, settings: Settings, n: int, work: Path) -> dict[str, list[str]]:
    refs: dict[str, list[str]] = {}
    rows = []
    for code, policy, address in (
        ("PLAIN", "opportunistic", "plain{i}@debtor.example"),
        ("PGP", "encrypt-or-notice", "pgp@debtor.example"),
        ("SMIME", "encrypt-or-notice", "smime@debtor.example"),
    ):
        await create_creditor(
            database,
            CreditorData(code, f"{code} Creditor GmbH", "Legal identity, Berlin", "", IBAN),
        )
        async with database.transaction() as session:
            await session.execute(
                update(Creditor)
                .where(Creditor.code == code)
                .values(settings={"dunning": {"encryption": policy, "quiet_hours": NEVER_QUIET}})
            )
        refs[code] = [f"{code}-{i}" for i in range(n)]
        rows += [
            f"{code},{code}-{i},D{code}{i},Debtor Number {i},{address.format(i=i)},UTC,"
            f"{100 + i}.50,EUR,2026-01-15\n"
            for i in range(n)
        ]
    parsed = parse_case_file(
        (HEADER + "".join(rows)).encode(), RowDefaults("en", "UTC", creditor=None)
    )
    await import_cases(database, parsed, source="bench.csv", batch_size=2000)
    return refs


def bare_pgp(home: str, fpr: str, hub_home: Path, hub_fpr: str, body: bytes, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        run(
            "gpg", "--homedir", str(hub_home), "--batch", "--pinentry-mode", "loopback",
            "--passphrase", PASS, "--trust-model", "always", "--armor", "--sign", "--local-user",
            hub_fpr, "--encrypt", "--recipient", fpr, stdin=body,
        )  # fmt: skip
    return n / (time.perf_counter() - start)


def bare_smime(cert_path: Path, signer: Path, key_path: Path, body: bytes, n: int) -> float:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    hub_cert = x509.load_pem_x509_certificate(signer.read_bytes())
    key = load_signing_key(key_path.read_bytes(), SecretStr(PASS))
    start = time.perf_counter()
    for _ in range(n):
        signature = (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(body)
            .add_signer(hub_cert, key, hashes.SHA256())
            .sign(
                serialization.Encoding.DER,
                [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary],
            )
        )
        (
            pkcs7.PKCS7EnvelopeBuilder()
            .set_data(body + signature)
            .add_recipient(cert)
            .set_content_encryption_algorithm(algorithms.AES256)
            .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
        )
    return n / (time.perf_counter() - start)


def bare_plain(mailer: ReminderMailer, plan: MailPlan, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        rendered = mailer.renderer.render_reminder(plan.reminder)
        message, _ = compose_reminder(
            rendered,
            from_addr=FROM,
            to_addr=plan.to_addr,
            reply_to=plan.reply_address,
            message_id_domain="hub.example",
            references=[],
            in_reply_to=None,
            date=plan.date,
        )
        to_bytes(message)
    return n / (time.perf_counter() - start)


async def main_async(n: int, database_url: str | None) -> None:
    work = Path(tempfile.mkdtemp(prefix="hub-reminder-bench-"))
    env = {
        "HUB_SECURITY_AT_REST_KEYS": f"k1:{generate_key()}",
        "HUB_SECURITY_LOOKUP_KEY": generate_key(),
        "HUB_SECURITY_REPLY_TOKEN_KEY": generate_key(),
        "HUB_DATABASE_URL": database_url or f"sqlite+aiosqlite:///{work / 'hub.db'}",
        "HUB_HUB_DATA_DIR": str(work / "var"),
        "HUB_SMTP_FROM_ADDRESS": FROM,
        "HUB_SMTP_REPLY_DOMAIN": "hub.example",
    }
    settings = load_settings(None, env)
    keystore = open_keystore(settings)
    hub_fpr = create_pgp_identity(keystore, "Hub", FROM, SecretStr(PASS))
    keystore.close()
    files = create_smime_identity(work / "signing", "Hub", FROM, SecretStr(PASS))
    settings = load_settings(
        None,
        {
            **env,
            "HUB_SIGNING_PGP_FINGERPRINT": hub_fpr,
            "HUB_SIGNING_PGP_PASSPHRASE": PASS,
            "HUB_SIGNING_SMIME_CERT_FILE": str(files.cert),
            "HUB_SIGNING_SMIME_KEY_FILE": str(files.key),
            "HUB_SIGNING_SMIME_KEY_PASSPHRASE": PASS,
        },
    )
    database = open_database(settings)
    await migrate.upgrade(database.engine)
    mailer = await open_mailer(settings)
    try:
        refs = await setup(database, settings, n, work)
        debtor_fpr, debtor_public, debtor_home = debtor_pgp_key(work / "debtor-gnupg")
        cert = debtor_cert(work)
        for ref in refs["PGP"]:
            await add_debtor_key(database, mailer.identity.keystore, ref=ref, data=debtor_public)
        for ref in refs["SMIME"]:
            await add_debtor_key(
                database, mailer.identity.keystore, ref=ref, data=cert.read_bytes()
            )
        now = datetime.now(UTC) + timedelta(minutes=1)
        results: dict[str, float] = {}
        for code, label in (("PLAIN", "plain"), ("PGP", "pgp-mime"), ("SMIME", "smime-cbc")):
            start = time.perf_counter()
            summary = await queue_due_reminders(
                database, settings, now, mailer=mailer, case_refs=refs[code]
            )
            elapsed = time.perf_counter() - start
            assert summary.queued[label] == n, summary.summary()
            results[label] = n / elapsed
        # the bare work on a body of the same size as a reminder's inner entity
        body = os.urandom(1500).hex().encode() + b"\r\n"
        plan = await _a_plan(database, settings, mailer, now)
        bare = {
            "plain": bare_plain(mailer, plan, n),
            "pgp-mime": bare_pgp(debtor_home, debtor_fpr, settings.signing.gnupg_home_in(
                settings.hub.data_dir), hub_fpr, body, min(n, 200)),
            "smime-cbc": bare_smime(cert, files.cert, files.key, body, n),
        }  # fmt: skip
        print(f"{f'reminders (n={n})':<20}{'hub/s':>10}{'bare/s':>10}{'hub/bare':>10}")
        for label, hub_rate in results.items():
            print(
                f"{label:<20}{hub_rate:>10.1f}{bare[label]:>10.1f}{hub_rate / bare[label]:>10.2f}"
            )
        print("bare: plain = render+compose only; pgp = gpg CLI sign+encrypt per message; "
              "smime = cryptography sign+envelope only")  # fmt: skip
    finally:
        mailer.close()
        await database.close()
        await asyncio.to_thread(
            subprocess.run,
            ["gpgconf", "--homedir", str(work / "debtor-gnupg"), "--kill", "gpg-agent"],
            check=False,
        )
        shutil.rmtree(work, ignore_errors=True)


async def _a_plan(
    database: Database, settings: Settings, mailer: ReminderMailer, now: datetime
) -> MailPlan:
    """A reminder plan for one plain case (the same path, rolled back)."""
    from hub.services.dunning_plan import plan_reminder

    async with database.sessions() as session:
        decision = await plan_reminder(session, settings, database.keyring, 1, now, for_render=True)
        await session.rollback()
    assert decision.plan is not None
    return decision.plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=200, help="cases per group")
    parser.add_argument("--database-url", help="an empty, migrated-or-not PostgreSQL database")
    args = parser.parse_args()
    asyncio.run(main_async(args.n, args.database_url))


if __name__ == "__main__":
    main()
