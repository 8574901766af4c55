"""The demo's simulated debtors: their own keys, and a mail client that opens what they get.

Each debtor with a key has it on "their machine" (a folder of their own under the demo
directory): an OpenPGP key in a GnuPG home of their own, or an S/MIME certificate and key. The
hub only ever gets the public half. Reading a message uses the real tools a debtor's client would
use: ``gpg --decrypt`` and ``openssl cms -decrypt`` / ``-verify``.
"""

from __future__ import annotations

import email
import email.policy
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hub.crypto.autocrypt import parse_autocrypt_header
from hub.crypto.gnupg_home import short_home
from hub.demo.data import DemoDebtor

GPG_TIMEOUT = 60


@dataclass(frozen=True)
class DebtorMachine:
    """Where one simulated debtor keeps their secret key."""

    debtor: DemoDebtor
    home: Path

    @property
    def gnupg_home(self) -> Path:
        return self.home / "gnupg"

    @property
    def smime_key(self) -> Path:
        return self.home / "smime-key.pem"

    @property
    def smime_cert(self) -> Path:
        return self.home / "smime-cert.pem"


def _gpg(home: Path, *args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            "gpg",
            "--homedir",
            str(short_home(home)),
            "--batch",
            "--no-tty",
            "--status-fd",
            "2",
            *args,
        ],
        input=data,
        capture_output=True,
        timeout=GPG_TIMEOUT,
        check=False,
    )


def _make_pgp_key(machine: DebtorMachine) -> bytes:
    home = machine.gnupg_home
    home.mkdir(mode=0o700, parents=True)
    uid = f"{machine.debtor.name} <{machine.debtor.email}>"
    loopback = ("--pinentry-mode", "loopback", "--passphrase", "")
    done = _gpg(home, *loopback, "--quick-gen-key", uid, "ed25519", "sign", "1y")
    if done.returncode == 0:
        done = _gpg(home, *loopback, "--quick-add-key", _fingerprint(home), "cv25519", "encr", "1y")
    if done.returncode != 0:
        raise RuntimeError(f"gpg could not make the demo key: {done.stderr[-300:]!r}")
    return _gpg(home, "--armor", "--export", machine.debtor.email).stdout


def _fingerprint(home: Path) -> str:
    listing = _gpg(home, "--with-colons", "--list-secret-keys").stdout.decode()
    for line in listing.splitlines():
        if line.startswith("fpr:"):
            return line.split(":")[9]
    raise RuntimeError("no key in the demo debtor's GnuPG home")


def _make_smime_cert(machine: DebtorMachine) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, machine.debtor.name),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, machine.debtor.email),
        ]
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(machine.debtor.email)]), False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .sign(key, hashes.SHA256())
    )
    machine.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    machine.smime_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    machine.smime_key.chmod(0o600)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    machine.smime_cert.write_bytes(pem)
    return pem


def set_up_machine(debtor: DemoDebtor, root: Path) -> tuple[DebtorMachine, bytes | None]:
    """Create the debtor's key (if the demo gives them one); returns the public half."""
    machine = DebtorMachine(debtor, root / debtor.debtor_ref)
    machine.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    if debtor.key == "pgp":
        return machine, _make_pgp_key(machine)
    if debtor.key.startswith("smime"):
        return machine, _make_smime_cert(machine)
    return machine, None


@dataclass(frozen=True)
class ReadMail:
    """What the debtor's client shows."""

    outer_subject: str
    protection: str
    signature: str
    subject: str
    text: str


def _text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    return body.get_content() if isinstance(body, EmailMessage) else ""


def _parse(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _learn_autocrypt(machine: DebtorMachine, message: EmailMessage) -> None:
    """An Autocrypt-capable client learns the sender's key from the header."""
    header = message.get("Autocrypt")
    if header is None:
        return
    learnt = parse_autocrypt_header(str(header))
    _gpg(machine.gnupg_home, "--import", data=learnt.keydata)


def _open_pgp(machine: DebtorMachine, message: EmailMessage) -> tuple[EmailMessage, str]:
    _learn_autocrypt(machine, message)
    parts = list(message.iter_parts())
    armored = parts[1].get_payload(decode=True) if len(parts) == 2 else None
    if not isinstance(armored, bytes):
        raise RuntimeError("not a PGP/MIME message")
    done = _gpg(machine.gnupg_home, "--trust-model", "always", "--decrypt", data=armored)
    status = done.stderr.decode("utf-8", "replace")
    if "DECRYPTION_OKAY" not in status:
        return message, "could not decrypt"
    good = [line for line in status.splitlines() if "GOODSIG" in line]
    signature = (
        "good signature from "
        + good[0].split(" ", 3)[3]
        + " (key learnt from its Autocrypt header)"
        if good
        else "no valid signature"
    )
    return _parse(done.stdout), signature


def encrypt_and_sign(machine: DebtorMachine, data: bytes, recipient: str) -> bytes:
    """``gpg --encrypt --sign`` in the debtor's home: to ``recipient``'s key (learnt from an
    Autocrypt header, so untrusted: the debtor's client trusts it for this message), signed with
    the debtor's own key; ASCII-armored."""
    done = _gpg(
        machine.gnupg_home,
        "--pinentry-mode", "loopback", "--passphrase", "",
        "--trust-model", "always",
        "--armor", "--encrypt", "--sign",
        "--local-user", machine.debtor.email,
        "--recipient", recipient,
        data=data,
    )  # fmt: skip
    status = done.stderr.decode("utf-8", "replace")
    if done.returncode != 0 or "END_ENCRYPTION" not in status or "SIG_CREATED" not in status:
        raise RuntimeError(f"gpg could not encrypt and sign the reply: {status[-300:]!r}")
    return done.stdout


def stop_agent(machine: DebtorMachine) -> None:
    """End the gpg-agent the debtor's GnuPG home started (it would outlive the demo)."""
    if machine.gnupg_home.is_dir():
        subprocess.run(
            ["gpgconf", "--homedir", str(short_home(machine.gnupg_home)), "--kill", "gpg-agent"],
            capture_output=True,
            timeout=GPG_TIMEOUT,
            check=False,
        )


def _openssl(*args: str, data: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["openssl", "cms", *args], input=data, capture_output=True, timeout=60, check=False
    )


def _open_smime(machine: DebtorMachine, data: bytes, hub_cert: Path) -> tuple[EmailMessage, str]:
    decrypted = _openssl(
        "-decrypt", "-recip", str(machine.smime_cert), "-inkey", str(machine.smime_key), data=data
    )
    if decrypted.returncode != 0:
        return _parse(data), "could not decrypt"
    verified = _openssl(
        "-verify", "-CAfile", str(hub_cert), "-purpose", "any", data=decrypted.stdout
    )
    signature = (
        "valid S/MIME signature of the hub's certificate"
        if verified.returncode == 0
        else "signature does NOT verify"
    )
    content = verified.stdout if verified.returncode == 0 else decrypted.stdout
    return _parse(content), signature


def read_mail(machine: DebtorMachine, data: bytes, hub_cert: Path) -> ReadMail:
    """Open a delivered message the way the debtor's own mail client would."""
    message = _parse(data)
    outer_subject = str(message.get("Subject", ""))
    content_type = message.get_content_type()
    if content_type == "multipart/encrypted":
        inner, signature = _open_pgp(machine, message)
        protection = "PGP/MIME, encrypted and signed"
    elif content_type == "application/pkcs7-mime":
        inner, signature = _open_smime(machine, data, hub_cert)
        kind = message.get_param("smime-type") or "enveloped-data"
        cipher = "AES-256-GCM" if "authenveloped" in str(kind).lower() else "AES-256-CBC"
        protection = f"S/MIME ({cipher}), encrypted and signed"
    else:
        inner, signature, protection = message, "not signed", "not encrypted"
    subject = str(inner.get("Subject", outer_subject)).strip()
    return ReadMail(outer_subject, protection, signature, subject, _text_of(inner))
