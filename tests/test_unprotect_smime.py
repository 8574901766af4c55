"""Unprotecting S/MIME mail with real OpenSSL: enveloped (CBC), authEnveloped (GCM), signed
(detached and opaque), their nestings, trust, the From check and the learnt certificate.

A throw-away CA (``cryptography``) issues the debtor's and the hub's certificates. Messages are
made by the hub's own outgoing functions (:mod:`hub.crypto.smime`) and by ``openssl cms``.
"""

from __future__ import annotations

import email.policy
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import SecretStr

from hub.crypto.mime_parts import canonical_bytes, copy_outer_headers, inner_entity
from hub.crypto.smime import (
    encrypt_cbc,
    encrypt_gcm,
    pkcs7_mime_body,
    protect_smime,
    sign_smime,
    signed_bytes,
)
from hub.inbound.unprotect import DecryptionVerdict, InboundKeys, SignatureVerdict, unprotect

NOW = datetime.now(UTC)
DEBTOR = "dana@debtor.example"
HUB = "replies@hub.example"
PASSWORD = "hub s/mime key password"


@dataclass
class Issued:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(Encoding.PEM)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(cn: str) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=10))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Issued(key, cert)


def _issue(ca: Issued, address: str) -> Issued:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(address))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(address)]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return Issued(key, cert)


@dataclass
class Smime:
    debtor: Issued
    hub: Issued
    other: Issued
    keys: InboundKeys
    files: Path


@pytest.fixture(scope="module")
def smime(tmp_path_factory: pytest.TempPathFactory) -> Smime:
    files = tmp_path_factory.mktemp("smime")
    ca, other_ca = _ca("Debtor CA"), _ca("Other CA")
    debtor, hub, other = _issue(ca, DEBTOR), _issue(ca, HUB), _issue(other_ca, DEBTOR)
    (files / "ca.pem").write_bytes(ca.cert_pem)
    (files / "other-ca.pem").write_bytes(other_ca.cert_pem)
    (files / "hub.crt").write_bytes(hub.cert_pem)
    key_path = files / "hub.key"
    key_path.write_bytes(
        hub.key.private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(PASSWORD.encode())
        )
    )
    key_path.chmod(0o600)
    keys = InboundKeys(
        smime_key=key_path,
        smime_cert=files / "hub.crt",
        smime_key_password=SecretStr(PASSWORD),
        smime_ca=files / "ca.pem",
    )
    return Smime(debtor, hub, other, keys, files)


def _plain(body: str, sender: str = DEBTOR) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Dana <{sender}>"
    msg["To"] = HUB
    msg["Subject"] = "Re: invoice 42"
    msg.set_content(body)
    return msg


def _wire(plain: EmailMessage, body: EmailMessage) -> bytes:
    return copy_outer_headers(plain, body).as_bytes(policy=email.policy.SMTP)


@pytest.mark.parametrize("aead", [False, True])
def test_signed_and_encrypted_by_the_hubs_own_code(smime: Smime, aead: bool) -> None:
    plain = _plain("Ich zahle 50 EUR im Monat.\n")
    body = protect_smime(
        inner_entity(plain), smime.hub.cert, smime.debtor.cert, smime.debtor.key, aead
    )
    result = unprotect(_wire(plain, body), smime.keys)
    assert result.decrypted and result.signature_valid
    assert result.integrity_protected is aead  # GCM has a tag; CBC EnvelopedData has none
    assert "Ich zahle 50 EUR im Monat." in result.text_body()
    check = result.best_signature
    assert check is not None and check.verdict is SignatureVerdict.VALID
    assert check.trusted and check.matches_from and check.signer == DEBTOR
    learnt = [k for k in result.learnt_keys if k.kind == "smime"]
    assert learnt and learnt[0].addresses == (DEBTOR,) and learnt[0].source == "smime-signature"
    assert b"BEGIN CERTIFICATE" in learnt[0].key_bytes
    assert result.decryptions[0].ciphertext[:1] == b"\x30"  # the DER as received


def test_detached_signature_valid_tampered_untrusted_and_mismatch(smime: Smime) -> None:
    plain = _plain("Please send the statement.\n")
    raw = _wire(plain, sign_smime(inner_entity(plain), smime.debtor.cert, smime.debtor.key))
    good = unprotect(raw, smime.keys)
    assert not good.encrypted and good.signature_valid and good.parts[0].signed
    assert good.best_signature is not None
    assert good.best_signature.verdict is SignatureVerdict.VALID

    tampered = unprotect(raw.replace(b"the statement", b"the money"), smime.keys)
    assert tampered.best_signature is not None
    assert tampered.best_signature.verdict is SignatureVerdict.INVALID
    assert not tampered.signature_valid and not tampered.parts[0].signed

    other_anchor = InboundKeys(smime_ca=smime.files / "other-ca.pem")
    untrusted = unprotect(raw, other_anchor)
    assert untrusted.best_signature is not None
    assert untrusted.best_signature.verdict is SignatureVerdict.VALID_UNTRUSTED
    assert untrusted.signature_valid and not untrusted.best_signature.trusted

    forged = unprotect(raw.replace(DEBTOR.encode(), b"eve@else.example", 1), smime.keys)
    assert forged.best_signature is not None
    assert forged.best_signature.verdict is SignatureVerdict.SIGNER_MISMATCH


def test_opaque_signed_from_openssl(smime: Smime, tmp_path: Path) -> None:
    (tmp_path / "signer.pem").write_bytes(smime.debtor.cert_pem)
    (tmp_path / "signer.key").write_bytes(
        smime.debtor.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    )
    content = b"Content-Type: text/plain; charset=utf-8\r\n\r\nopaque hello\r\n"
    der = subprocess.run(
        [
            "openssl",
            "cms",
            "-sign",
            "-nodetach",
            "-binary",
            "-outform",
            "DER",
            "-signer",
            str(tmp_path / "signer.pem"),
            "-inkey",
            str(tmp_path / "signer.key"),
        ],
        input=content,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    body = pkcs7_mime_body(der, "signed-data")
    result = unprotect(_wire(_plain("x"), body), smime.keys)
    assert result.signature_valid and not result.encrypted
    assert result.text_body().strip() == "opaque hello"


def test_encrypted_inside_signed(smime: Smime) -> None:
    plain = _plain("inner secret\n")
    envelope = pkcs7_mime_body(
        encrypt_cbc(canonical_bytes(inner_entity(plain)), smime.hub.cert), "enveloped-data"
    )
    signed = sign_smime(envelope, smime.debtor.cert, smime.debtor.key)
    result = unprotect(_wire(plain, signed), smime.keys)
    assert result.decrypted and result.signature_valid
    assert result.text_body().strip() == "inner secret"
    assert result.parts[0].encrypted and result.parts[0].signed


def test_not_for_us_and_tampered_gcm(smime: Smime) -> None:
    plain = _plain("for someone else\n")
    content = signed_bytes(inner_entity(plain), smime.debtor.cert, smime.debtor.key)
    foreign = unprotect(
        _wire(plain, pkcs7_mime_body(encrypt_cbc(content, smime.other.cert), "enveloped-data")),
        smime.keys,
    )
    assert foreign.encrypted and not foreign.decrypted
    assert foreign.decryptions[0].verdict is DecryptionVerdict.FAILED
    assert foreign.parts == () and foreign.decryptions[0].ciphertext[:1] == b"\x30"

    der = bytearray(encrypt_gcm(content, smime.hub.cert))
    der[-40] ^= 0x01  # inside the encrypted content or the tag
    tampered = unprotect(
        _wire(plain, pkcs7_mime_body(bytes(der), "authEnveloped-data")), smime.keys
    )
    assert not tampered.decrypted and tampered.parts == ()
    assert "for someone else" not in tampered.text_body()


def test_no_key_configured(smime: Smime) -> None:
    plain = _plain("x\n")
    body = protect_smime(
        inner_entity(plain), smime.hub.cert, smime.debtor.cert, smime.debtor.key, False
    )
    result = unprotect(_wire(plain, body), InboundKeys())
    assert result.encrypted and result.decryptions[0].verdict is DecryptionVerdict.NO_KEY
    assert result.parts == ()
