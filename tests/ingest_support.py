"""Test support for the inbound pipeline: real GnuPG homes (the hub's, a debtor's, a
stranger's) and real messages made with them: encrypted replies, bounces, out-of-office mail."""

from __future__ import annotations

import email.policy
import re
import subprocess
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from pydantic import SecretStr

from hub.config import Settings, SigningSection
from hub.crypto.autocrypt import autocrypt_header
from hub.crypto.mime_parts import protect_message
from hub.crypto.pgp import PgpKeystore

DEBTOR = "dana@debtor.example"
STRANGER = "sam@stranger.example"
HUB = "replies@hub.example"
HUB_PASSPHRASE = "hub key passphrase"
REMINDER_ID = "<reminder-42.x1@hub.example>"


def gpg(home: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--no-tty", "--status-fd", "2", *args],
        input=stdin,
        capture_output=True,
        check=True,
        timeout=60,
    )


def new_key(home: Path, uid: str, passphrase: str = "") -> str:
    pw = ["--pinentry-mode", "loopback", "--passphrase", passphrase]
    out = gpg(home, *pw, "--quick-gen-key", uid, "ed25519", "sign", "1y").stderr.decode()
    match = re.search(r"KEY_CREATED [BP] ([0-9A-F]{40})", out)
    assert match, out
    gpg(home, *pw, "--quick-add-key", match.group(1), "cv25519", "encr", "1y")
    return match.group(1)


@dataclass
class Homes:
    hub: PgpKeystore
    hub_fpr: str
    debtor: PgpKeystore
    debtor_fpr: str
    stranger: PgpKeystore
    stranger_fpr: str

    def close(self) -> None:
        for store in (self.hub, self.debtor, self.stranger):
            store.close()


def make_homes(base: Path) -> Homes:
    hub = PgpKeystore(base / "hub", s2k_count=65536)
    debtor = PgpKeystore(base / "debtor")
    stranger = PgpKeystore(base / "stranger")
    hub_fpr = new_key(hub.home, f"Hub <{HUB}>", HUB_PASSPHRASE)
    debtor_fpr = new_key(debtor.home, f"Dana Debtor <{DEBTOR}>")
    stranger_fpr = new_key(stranger.home, f"Sam Stranger <{STRANGER}>")
    for store in (debtor, stranger):
        store.import_key(hub.export_public_key(hub_fpr))
    return Homes(hub, hub_fpr, debtor, debtor_fpr, stranger, stranger_fpr)


def with_hub_keys(settings: Settings, homes: Homes) -> Settings:
    """``settings`` whose [signing] section names the hub's GnuPG home and passphrase."""
    signing = SigningSection(
        gnupg_home=homes.hub.home,
        pgp_fingerprint=homes.hub_fpr,
        pgp_passphrase=SecretStr(HUB_PASSPHRASE),
    )
    return settings.model_copy(update={"signing": signing})


def plain(
    body: str,
    *,
    sender: str = DEBTOR,
    subject: str = "Re: Zahlungserinnerung",
    message_id: str = "<reply-1@debtor.example>",
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Dana Debtor <{sender}>"
    msg["To"] = HUB
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg["In-Reply-To"] = REMINDER_ID
    msg["Date"] = "Mon, 02 Mar 2026 10:00:00 +0100"
    msg.set_content(body)
    return msg


REPLY_BODY = (
    "Ich zahle am Freitag den ganzen Betrag.\n\n"
    "Am 01.03.2026 um 09:00 schrieb Inkasso Hub <replies@hub.example>:\n"
    "> Bitte zahlen Sie 120,00 EUR bis zum 10. März.\n"
)


def encrypted_reply(homes: Homes, message_id: str = "<enc-1@debtor.example>") -> bytes:
    """A debtor's reply, signed and encrypted to the hub's key (PGP/MIME, with MDC)."""
    msg = plain(REPLY_BODY, message_id=message_id)

    def protect(inner: EmailMessage) -> EmailMessage:
        return homes.debtor.protect_pgp_mime(inner, homes.hub_fpr, homes.debtor_fpr, None)

    return protect_message(msg, protect).as_bytes(policy=email.policy.SMTP)


def no_mdc_reply(homes: Homes) -> bytes:
    """Inline OpenPGP without integrity protection (RFC 2440 style): must be refused."""
    armored = gpg(
        homes.debtor.home,
        "--trust-model", "always", "--rfc2440", "--cipher-algo", "AES", "--armor",
        "--encrypt", "--recipient", homes.hub_fpr, "--output", "-",
        stdin=b"exfiltrate me\n",
    ).stdout.strip()  # fmt: skip
    return (
        (
            f"From: Dana Debtor <{DEBTOR}>\r\nTo: {HUB}\r\nSubject: old client\r\n"
            "Message-ID: <nomdc-1@debtor.example>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        ).encode()
        + armored
        + b"\r\n"
    )


def autocrypt_reply(homes: Homes, *, stranger: bool = False, message_id: str = "") -> bytes:
    store, fpr, sender = (
        (homes.stranger, homes.stranger_fpr, STRANGER)
        if stranger
        else (homes.debtor, homes.debtor_fpr, DEBTOR)
    )
    msg = plain("Hier ist mein Schlüssel.", sender=sender, message_id=message_id or "<ac@x>")
    msg["Autocrypt"] = autocrypt_header(sender, store.export_minimal_key(fpr, sender))
    return msg.as_bytes(policy=email.policy.SMTP)


def bounce(recipient: str = DEBTOR) -> bytes:
    """An RFC 3464 delivery status notification about our reminder (with its headers)."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.debtor.example>\r\n"
        f"To: {HUB}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <bounce-1@mx.debtor.example>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.debtor.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
        "--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {HUB}\r\nTo: {recipient}\r\nSubject: Zahlungserinnerung\r\n"
        f"Message-ID: {REMINDER_ID}\r\n\r\n"
        "--b1--\r\n"
    ).encode()


def out_of_office() -> bytes:
    return (
        f"From: Dana Debtor <{DEBTOR}>\r\nTo: {HUB}\r\n"
        "Subject: Abwesenheitsnotiz: Zahlungserinnerung\r\n"
        "Message-ID: <ooo-1@debtor.example>\r\n"
        "Auto-Submitted: auto-replied\r\nX-Autoreply: yes\r\n"
        f"In-Reply-To: {REMINDER_ID}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Ich bin bis zum 20. März nicht im Büro.\r\n"
    ).encode()
