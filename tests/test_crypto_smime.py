"""S/MIME signing and encryption, checked with the ``openssl cms`` command line.

A throw-away CA (made with ``cryptography``) issues the hub's signing certificate and the
debtors' certificates. The hub's output is decrypted with ``openssl cms -decrypt`` and its
signature verified with ``openssl cms -verify -CAfile``.
"""

from __future__ import annotations

import asyncio
import email.policy
import functools
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
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

from hub.crypto.errors import CertificateError, CryptoOperationError
from hub.crypto.mime_parts import canonical_bytes, inner_entity, protect_message
from hub.crypto.smime import aprotect_smime, encrypt_gcm, protect_smime, sign_smime
from hub.crypto.smime_certs import (
    choose_certificate,
    load_certificates,
    load_signing_key,
    unusable_reason,
)
from hub.errors import PermanentError, UserError

NOW = datetime.now(UTC)
Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass
class Issued:
    key: Key
    cert: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@pytest.fixture(scope="module")
def ca() -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Hub Test CA"))
        .issuer_name(_name("Hub Test CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=3650))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Issued(key, cert)


_RSA_KEYS: list[rsa.RSAPrivateKey] = []


def _rsa_key(index: int) -> rsa.RSAPrivateKey:
    while len(_RSA_KEYS) <= index:
        _RSA_KEYS.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _RSA_KEYS[index]


def issue(
    ca: Issued,
    emails: list[str],
    *,
    key: Key | None = None,
    start: datetime = NOW - timedelta(days=1),
    end: datetime = NOW + timedelta(days=365),
    encipher: bool = True,
    sign: bool = True,
    eku: list[x509.ObjectIdentifier] | None = None,
) -> Issued:
    key = key or _rsa_key(0)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(emails[0] if emails else "nobody"))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=sign,
                content_commitment=False,
                key_encipherment=encipher,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(eku or [ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
    )
    if emails:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name(e) for e in emails]), critical=False
        )
    return Issued(key, builder.sign(ca.key, hashes.SHA256()))


@pytest.fixture(scope="module")
def hub_signer(ca: Issued) -> Issued:
    return issue(ca, ["hub@collect.example"], key=ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="module")
def hub_rsa_signer(ca: Issued) -> Issued:
    return issue(ca, ["hub@collect.example"], key=_rsa_key(1))


@pytest.fixture(scope="module")
def alice(ca: Issued) -> Issued:
    return issue(ca, ["alice@debtor.example"], key=_rsa_key(2))


def _plain_message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Hub Collections <hub@collect.example>"
    msg["To"] = "Alice Debtor <alice@debtor.example>"
    msg["Subject"] = "Betalingspåmindelse – sag 2024-0042"
    msg["Date"] = "Fri, 20 Nov 2026 10:00:00 +0000"
    msg["Message-ID"] = "<r1.case42@collect.example>"
    msg["References"] = "<r0.case42@collect.example>"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content("Kære Alice,\nbetal venligst 1.250,00 kr. senest 1.12.2026.\n")
    msg.add_alternative("<p>Kære Alice, betal venligst 1.250,00 kr.</p>", subtype="html")
    msg.set_boundary("hub-test-boundary-1")
    return msg


def _openssl(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["openssl", *args], input=stdin, capture_output=True, timeout=60, check=False
    )


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _decrypt_and_verify(
    tmp_path: Path, sent: bytes, recipient: Issued, ca: Issued
) -> tuple[bytes, bytes]:
    """openssl cms -decrypt, then openssl cms -verify; returns (decrypted, verified content)."""
    message = _write(tmp_path, "sent.eml", sent)
    key = _write(tmp_path, "rcpt.key", recipient.key_pem)
    cert = _write(tmp_path, "rcpt.pem", recipient.cert_pem)
    cafile = _write(tmp_path, "ca.pem", ca.cert_pem)
    decrypted = _openssl("cms", "-decrypt", "-in", message, "-inkey", key, "-recip", cert)
    assert decrypted.returncode == 0, decrypted.stderr.decode()
    signed = _write(tmp_path, "signed.eml", decrypted.stdout)
    verified = _openssl("cms", "-verify", "-in", signed, "-CAfile", cafile)
    assert verified.returncode == 0, verified.stderr.decode()
    assert b"Verification successful" in verified.stderr
    return decrypted.stdout, verified.stdout


@pytest.mark.parametrize(
    ("aead", "smime_type", "cipher", "key_transport"),
    [
        (False, "enveloped-data", "aes-256-cbc", "rsaEncryption"),
        (True, "authEnveloped-data", "aes-256-gcm", "rsaesOaep"),
    ],
    ids=["cbc", "gcm"],
)
@pytest.mark.parametrize("signer_kind", ["ec", "rsa"])
def test_protect_smime_decrypts_and_verifies_with_openssl(
    tmp_path: Path,
    ca: Issued,
    hub_signer: Issued,
    hub_rsa_signer: Issued,
    alice: Issued,
    aead: bool,
    smime_type: str,
    cipher: str,
    key_transport: str,
    signer_kind: str,
) -> None:
    signer = hub_signer if signer_kind == "ec" else hub_rsa_signer
    plain = _plain_message()
    protect = functools.partial(
        protect_smime,
        recipient_cert_pem=alice.cert_pem,
        signer_cert_pem=signer.cert_pem,
        signer_key_pem=signer.key_pem,
        aead=aead,
    )
    sent = protect_message(plain, protect).as_bytes(policy=email.policy.SMTP)

    parsed = BytesParser(policy=email.policy.default).parsebytes(sent)
    assert parsed.get_content_type() == "application/pkcs7-mime"
    assert parsed.get_param("smime-type") == smime_type
    assert parsed.get_filename() == "smime.p7m"
    for name in ("From", "To", "Subject", "Date", "Message-ID", "References", "Auto-Submitted"):
        assert parsed[name] == plain[name], name
    assert b"1.250,00" not in sent

    der = parsed.get_payload(decode=True)
    assert isinstance(der, bytes)
    structure = _openssl("cms", "-cmsout", "-print", "-inform", "DER", stdin=der).stdout.decode()
    assert cipher in structure.lower()
    assert key_transport in structure
    if aead:
        assert "authEnvelopedData" in structure

    decrypted, content = _decrypt_and_verify(tmp_path, sent, alice, ca)
    signed = BytesParser(policy=email.policy.default).parsebytes(decrypted)
    assert signed.get_content_type() == "multipart/signed"
    assert signed.get_param("protocol") == "application/pkcs7-signature"
    assert signed.get_param("micalg") == "sha-256"
    assert content == canonical_bytes(inner_entity(plain))
    inner = BytesParser(policy=email.policy.default).parsebytes(content)
    text = inner.get_body(("plain",))
    assert text is not None and "1.250,00 kr." in text.get_content()


def test_signed_only_verifies_and_tampering_is_detected(
    tmp_path: Path, ca: Issued, hub_signer: Issued
) -> None:
    plain = _plain_message()
    protect = functools.partial(
        sign_smime, signer_cert=hub_signer.cert_pem, signer_key=hub_signer.key_pem
    )
    sent = protect_message(plain, protect).as_bytes(policy=email.policy.SMTP)
    cafile = _write(tmp_path, "ca.pem", ca.cert_pem)
    good = _openssl("cms", "-verify", "-in", _write(tmp_path, "ok.eml", sent), "-CAfile", cafile)
    assert good.returncode == 0, good.stderr.decode()
    assert "Kære Alice".encode() in good.stdout or b"K=C3=A6re" in good.stdout
    tampered = sent.replace(b"hub-test-boundary-1--", b"hub-test-boundary-1--\r\nextra", 1)
    assert tampered != sent
    bad = _openssl(
        "cms", "-verify", "-in", _write(tmp_path, "bad.eml", tampered), "-CAfile", cafile
    )
    assert bad.returncode != 0
    other_ca = _write(tmp_path, "other.pem", issue(ca, ["x@y.example"]).cert_pem)
    untrusted = _openssl("cms", "-verify", "-in", str(tmp_path / "ok.eml"), "-CAfile", other_ca)
    assert untrusted.returncode != 0


async def test_async_protect(tmp_path: Path, ca: Issued, hub_signer: Issued, alice: Issued) -> None:
    plain = _plain_message()
    inner = inner_entity(plain)
    results = await asyncio.gather(
        aprotect_smime(inner, alice.cert_pem, hub_signer.cert_pem, hub_signer.key_pem, True),
        aprotect_smime(inner, alice.cert_pem, hub_signer.cert_pem, hub_signer.key_pem, False),
    )
    assert [r.get_param("smime-type") for r in results] == ["authEnveloped-data", "enveloped-data"]


# --- certificate choice ------------------------------------------------------------------------


def test_choose_certificate(ca: Issued) -> None:
    address = "bob@debtor.example"
    older = issue(ca, [address], start=NOW - timedelta(days=100))
    newest = issue(
        ca, ["other@debtor.example", "Bob@Debtor.example"], start=NOW - timedelta(days=2)
    )
    rejected = {
        "expired": issue(
            ca, [address], start=NOW - timedelta(days=30), end=NOW - timedelta(days=1)
        ),
        "not valid yet": issue(ca, [address], start=NOW + timedelta(days=1)),
        "keyUsage does not allow keyEncipherment": issue(
            ca, [address], encipher=False, start=NOW - timedelta(hours=1)
        ),
        "extendedKeyUsage does not allow emailProtection": issue(
            ca, [address], eku=[ExtendedKeyUsageOID.SERVER_AUTH], start=NOW - timedelta(hours=1)
        ),
        "not an RSA key": issue(
            ca, [address], key=ec.generate_private_key(ec.SECP256R1()), start=NOW
        ),
        "address not in subjectAltName": issue(ca, ["carol@debtor.example"], start=NOW),
    }
    for reason, issued in rejected.items():
        assert unusable_reason(issued.cert, address) == reason
    certs = [older.cert, newest.cert, *(i.cert for i in rejected.values())]
    assert choose_certificate(certs, address) == newest.cert
    assert choose_certificate(certs, "BOB@debtor.example") == newest.cert
    assert choose_certificate([older.cert, *(i.cert for i in rejected.values())], address) == (
        older.cert
    )
    assert choose_certificate([i.cert for i in rejected.values()], address) is None
    # A certificate with no SAN at all never matches.
    assert choose_certificate([issue(ca, []).cert], address) is None


def test_load_certificates_pem_bundle_and_der(ca: Issued, alice: Issued) -> None:
    bundle = alice.cert_pem + ca.cert_pem
    assert load_certificates(bundle) == [alice.cert, ca.cert]
    assert load_certificates(alice.cert.public_bytes(Encoding.DER)) == [alice.cert]


@pytest.mark.parametrize(
    "data",
    [b"", b"garbage", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"],
    ids=["empty", "garbage", "broken-pem"],
)
def test_broken_certificate_is_a_user_error(data: bytes, hub_signer: Issued) -> None:
    with pytest.raises(CertificateError) as caught:
        load_certificates(data)
    assert isinstance(caught.value, UserError)
    with pytest.raises(CertificateError):
        protect_smime(
            inner_entity(_plain_message()), data, hub_signer.cert_pem, hub_signer.key_pem, False
        )


def test_broken_or_locked_key_is_a_user_error(hub_signer: Issued, alice: Issued) -> None:
    locked = hub_signer.key.private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"s3cret-pass")
    )
    assert isinstance(
        load_signing_key(locked, SecretStr("s3cret-pass")), ec.EllipticCurvePrivateKey
    )
    with pytest.raises(CertificateError) as caught:
        load_signing_key(locked, SecretStr("wrong-pass"))
    assert "wrong-pass" not in str(caught.value)
    with pytest.raises(CertificateError):
        load_signing_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(CertificateError):
        protect_smime(
            inner_entity(_plain_message()), alice.cert_pem, hub_signer.cert_pem, b"junk", True
        )


def test_ec_recipient_for_cbc_is_refused(ca: Issued, hub_signer: Issued) -> None:
    ec_recipient = issue(ca, ["ec@debtor.example"], key=ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(CertificateError):
        protect_smime(
            inner_entity(_plain_message()),
            ec_recipient.cert_pem,
            hub_signer.cert_pem,
            hub_signer.key_pem,
            False,
        )


def test_openssl_failure_raises(alice: Issued, tmp_path: Path) -> None:
    with pytest.raises(CryptoOperationError) as caught:
        encrypt_gcm(b"data", alice.cert_pem, openssl=str(tmp_path / "no-such-openssl"))
    assert isinstance(caught.value, PermanentError)
    failing = tmp_path / "failing-openssl"
    failing.write_text("#!/bin/sh\necho 'cms: unsupported cipher' >&2\nexit 1\n")
    failing.chmod(0o755)
    with pytest.raises(CryptoOperationError, match="unsupported cipher"):
        encrypt_gcm(b"data", alice.cert_pem, openssl=str(failing))
