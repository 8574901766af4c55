"""Test support for the dunning send path: keys made outside the hub, a capturing SMTP sink,
creditors and cases imported through the real CSV importer, and checks with gpg and openssl.

Debtors' keys are made by the ``gpg`` and ``openssl`` command lines, as a debtor would make
them; the hub's own identity by :mod:`hub.services.hub_identity`, as ``hub keys init-signing``
makes it. What the hub sends is decrypted and verified by the same command lines.
"""

from __future__ import annotations

import email
import email.policy
import re
import shutil
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from pydantic import SecretStr
from sqlalchemy import update

from hub.config import Settings, SigningSection, SmtpSection
from hub.services.case_import import import_cases
from hub.services.case_rows import RowDefaults
from hub.services.creditors import CreditorData, create_creditor
from hub.services.csv_rows import parse_case_file
from hub.services.hub_identity import create_pgp_identity, create_smime_identity, open_keystore
from hub.storage.db import Database
from hub.storage.models import Creditor

FROM = "reminders@hub.example"
REPLY_DOMAIN = "hub.example"
HUB_PASSPHRASE = "hub key passphrase for tests"
SMIME_PASSPHRASE = "smime key passphrase for tests"
IBAN = "DE89370400440532013000"
LEGAL = "Nordlicht Energie GmbH\nHafenstrasse 12, 20457 Hamburg\nHRB 998877"
#: a policy that never sleeps, so the tests do not depend on the hour they run at
NO_QUIET = {"quiet_hours": ["00:00", "00:00"]}


def run(
    *command: str, stdin: bytes = b"", check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(command, input=stdin, capture_output=True, check=check, timeout=60)


def kill_agent(home: Path) -> None:
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)


@dataclass
class DebtorWorld:
    """Keys that debtors made with their own tools: files to upload, secrets to decrypt with."""

    root: Path
    gpg_home: Path
    pgp_public: dict[str, bytes] = field(default_factory=dict)
    pgp_fpr: dict[str, str] = field(default_factory=dict)
    cert: dict[str, Path] = field(default_factory=dict)
    key: dict[str, Path] = field(default_factory=dict)

    def new_pgp_key(self, name: str, address: str) -> None:
        out = run(
            "gpg", "--homedir", str(self.gpg_home), "--batch", "--status-fd", "2",
            "--pinentry-mode", "loopback", "--passphrase", "",
            "--quick-gen-key", f"{name} <{address}>", "ed25519", "sign", "1y",
        ).stderr.decode()  # fmt: skip
        match = re.search(r"KEY_CREATED [BP] ([0-9A-F]{40})", out)
        assert match, out
        fpr = match.group(1)
        run(
            "gpg", "--homedir", str(self.gpg_home), "--batch", "--pinentry-mode", "loopback",
            "--passphrase", "", "--quick-add-key", fpr, "cv25519", "encr", "1y",
        )  # fmt: skip
        self.pgp_fpr[address] = fpr
        self.pgp_public[address] = run(
            "gpg", "--homedir", str(self.gpg_home), "--armor", "--export", fpr
        ).stdout

    def new_certificate(self, name: str, address: str) -> None:
        cert, key = self.root / f"{address}.crt", self.root / f"{address}.key"
        run(
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
            "-subj", f"/CN={name}", "-addext", f"subjectAltName=email:{address}",
            "-addext", "keyUsage=digitalSignature,keyEncipherment",
            "-addext", "extendedKeyUsage=emailProtection",
            "-keyout", str(key), "-out", str(cert),
        )  # fmt: skip
        self.cert[address], self.key[address] = cert, key

    def close(self) -> None:
        kill_agent(self.gpg_home)
        shutil.rmtree(self.root, ignore_errors=True)


def new_world() -> DebtorWorld:
    root = Path(tempfile.mkdtemp(prefix="hub-dunning-world-"))
    home = root / "gnupg"
    home.mkdir(mode=0o700)
    return DebtorWorld(root=root, gpg_home=home)


@dataclass(frozen=True)
class HubKeys:
    gnupg_home: Path
    fingerprint: str
    smime_cert: Path
    smime_key: Path
    public_key: bytes


def make_hub_keys(directory: Path) -> HubKeys:
    """The hub's identity as ``hub keys init-signing`` makes it."""
    home = directory / "gnupg"
    keystore = open_keystore_at(home)
    try:
        fpr = create_pgp_identity(keystore, "Hub Collections", FROM, SecretStr(HUB_PASSPHRASE))
        public = keystore.export_public_key(fpr, armor=True)
    finally:
        keystore.close()
    files = create_smime_identity(
        directory / "signing", "Hub Collections", FROM, SecretStr(SMIME_PASSPHRASE)
    )
    return HubKeys(home, fpr, files.cert, files.key, public)


def open_keystore_at(home: Path) -> Any:
    settings = Settings.model_validate({"signing": {"gnupg_home": str(home)}})
    return open_keystore(settings)


def hub_settings(settings: Settings, keys: HubKeys, **smtp: Any) -> Settings:
    """``settings`` with the hub's identity and the test addresses."""
    signing = SigningSection(
        gnupg_home=keys.gnupg_home,
        pgp_fingerprint=keys.fingerprint,
        pgp_passphrase=SecretStr(HUB_PASSPHRASE),
        smime_cert_file=keys.smime_cert,
        smime_key_file=keys.smime_key,
        smime_key_passphrase=SecretStr(SMIME_PASSPHRASE),
    )
    values = {"from_address": FROM, "reply_domain": REPLY_DOMAIN, **smtp}
    smtp_section = SmtpSection.model_validate({**settings.smtp.model_dump(), **values})
    return settings.model_copy(update={"signing": signing, "smtp": smtp_section})


def signing_env(keys: HubKeys) -> dict[str, str]:
    """The same identity as HUB_* variables (for the ``hub`` command)."""
    return {
        "HUB_SIGNING_GNUPG_HOME": str(keys.gnupg_home),
        "HUB_SIGNING_PGP_FINGERPRINT": keys.fingerprint,
        "HUB_SIGNING_PGP_PASSPHRASE": HUB_PASSPHRASE,
        "HUB_SIGNING_SMIME_CERT_FILE": str(keys.smime_cert),
        "HUB_SIGNING_SMIME_KEY_FILE": str(keys.smime_key),
        "HUB_SIGNING_SMIME_KEY_PASSPHRASE": SMIME_PASSPHRASE,
        "HUB_SMTP_FROM_ADDRESS": FROM,
        "HUB_SMTP_REPLY_DOMAIN": REPLY_DOMAIN,
    }


CSV_HEADER = "creditor,reference,debtor_ref,name,email,language,timezone,amount,currency,due_date\n"


def csv_row(
    creditor: str,
    reference: str,
    name: str,
    address: str,
    *,
    amount: str = "310.00",
    language: str = "en",
    timezone: str = "UTC",
    due: str = "2026-01-15",
) -> str:
    return (
        f"{creditor},{reference},D-{reference},{name},{address},{language},{timezone},"
        f"{amount},EUR,{due}\n"
    )


async def add_creditor(
    database: Database, code: str, name: str, dunning: dict[str, Any] | None = None
) -> None:
    await create_creditor(
        database, CreditorData(code, name, LEGAL, "billing@creditor.example", IBAN, "COBADEFFXXX")
    )
    async with database.transaction() as session:
        await session.execute(
            update(Creditor)
            .where(Creditor.code == code)
            .values(settings={"dunning": dunning if dunning is not None else NO_QUIET})
        )


async def import_csv(database: Database, settings: Settings, text: str) -> None:
    defaults = RowDefaults(language="en", timezone="UTC", creditor=None)
    parsed = parse_case_file((CSV_HEADER + text).encode(), defaults)
    assert not parsed.errors, parsed.errors
    report = await import_cases(database, parsed, source="cases.csv", batch_size=100)
    assert report.imported == len(parsed.rows), report.summary()


# -- the SMTP sink ------------------------------------------------------------------------------


@dataclass
class Delivered:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Sink:
    received: list[Delivered] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.lock:
            self.received.append(
                Delivered(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
            )
        return "250 2.0.0 Ok: queued"

    def to(self, address: str) -> Delivered:
        found = [d for d in self.received if address in d.rcpt_tos]
        assert len(found) == 1, (address, len(found))
        return found[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_sink() -> tuple[Sink, Controller]:
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    return sink, controller


# -- checking what arrived ------------------------------------------------------------------------


def gpg_decrypt(home: Path, armored: bytes) -> tuple[str, bytes]:
    """gpg's status lines and the plaintext."""
    done = run(
        "gpg", "--homedir", str(home), "--batch", "--status-fd", "2", "--decrypt",
        stdin=armored,
    )  # fmt: skip
    return done.stderr.decode("utf-8", "replace"), done.stdout


def pgp_payload(message: EmailMessage) -> bytes:
    assert message.get_content_type() == "multipart/encrypted"
    assert message.get_param("protocol") == "application/pgp-encrypted"
    parts = list(message.iter_parts())
    assert parts[0].get_content_type() == "application/pgp-encrypted"
    payload = parts[1].get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload


def openssl_decrypt_and_verify(
    raw: bytes, cert: Path, key: Path, hub_cert: Path, workdir: Path
) -> bytes:
    """``openssl cms -decrypt`` with the debtor's key, then ``openssl cms -verify`` against the
    hub's certificate; returns the signed content (raises if either step fails)."""
    encrypted, decrypted = workdir / "in.eml", workdir / "decrypted.eml"
    encrypted.write_bytes(raw)
    run(
        "openssl", "cms", "-decrypt", "-in", str(encrypted), "-recip", str(cert),
        "-inkey", str(key), "-out", str(decrypted),
    )  # fmt: skip
    verified = run(
        "openssl", "cms", "-verify", "-in", str(decrypted), "-CAfile", str(hub_cert),
        "-purpose", "smimesign",
    )  # fmt: skip
    assert b"Verification successful" in verified.stderr, verified.stderr
    return verified.stdout


def decoded_text(message: EmailMessage) -> str:
    """Every text part of ``message``, decoded (quoted-printable may split words in the raw)."""
    texts = []
    for part in message.walk():
        if part.get_content_maintype() == "text":
            content = part.get_content()
            assert isinstance(content, str)
            texts.append(content)
    return "\n".join(texts)
