"""S/MIME 4.0 (RFC 8551) for outgoing mail: sign, then encrypt with AES-256.

* Signing: a detached CMS SignedData over the inner entity in canonical CRLF form (SHA-256,
  ``cryptography``'s ``PKCS7SignatureBuilder``), in a ``multipart/signed;
  protocol="application/pkcs7-signature"; micalg=sha-256`` body (RFC 8551 section 3.5.3). The
  multipart is assembled here byte by byte, so the signed bytes are exactly the bytes sent.
* Encryption, AES-256-CBC: CMS EnvelopedData with RSA PKCS#1 v1.5 key transport
  (``PKCS7EnvelopeBuilder``), ``smime-type=enveloped-data``. Every S/MIME client reads it.
* Encryption, AES-256-GCM: CMS AuthEnvelopedData (RFC 5083, RFC 5084) with RSAES-OAEP (SHA-256,
  MGF1-SHA-256; RFC 8017, RFC 4055) key transport, made by ``openssl cms`` (``cryptography`` has
  neither), ``smime-type=authEnveloped-data``. Use it where the recipient is known to support it.

The plaintext goes to ``openssl`` through a pipe; only the (public) recipient certificate is
written to a temporary file, because ``openssl cms -recip`` wants a file name.

Everything here blocks (CPU work, a subprocess); the ``a*`` coroutines run it in a thread.
"""

from __future__ import annotations

import asyncio
import base64
import email.parser
import email.policy
import secrets
import subprocess
import tempfile
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from pydantic import SecretStr

from hub.crypto.errors import CertificateError, CryptoOperationError, CryptoTimeoutError
from hub.crypto.mime_parts import canonical_bytes
from hub.crypto.smime_certs import SigningKey, load_certificate, load_signing_key

CertInput = bytes | str | x509.Certificate
KeyInput = bytes | str | SigningKey

#: RFC 8551 section 3.2.2: the smime-type values of the two envelopes.
ENVELOPED = "enveloped-data"
AUTH_ENVELOPED = "authEnveloped-data"


def _signing_key(key: KeyInput, password: SecretStr | None) -> SigningKey:
    if isinstance(key, bytes | str):
        return load_signing_key(key, password)
    return key


def _base64_lines(der: bytes) -> bytes:
    encoded = base64.b64encode(der)
    return b"".join(encoded[i : i + 76] + b"\r\n" for i in range(0, len(encoded), 76))


def sign_detached(
    content: bytes,
    signer_cert: CertInput,
    signer_key: KeyInput,
    *,
    key_password: SecretStr | None = None,
    extra_certs: Sequence[CertInput] = (),
) -> bytes:
    """A DER CMS SignedData with a detached SHA-256 signature over ``content`` as given."""
    cert = load_certificate(signer_cert)
    key = _signing_key(signer_key, key_password)
    builder = pkcs7.PKCS7SignatureBuilder().set_data(content)
    try:
        builder = builder.add_signer(cert, key, hashes.SHA256())
        for extra in extra_certs:
            builder = builder.add_certificate(load_certificate(extra))
        return builder.sign(
            Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary]
        )
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"cannot sign with this certificate and key: {exc}") from exc


def signed_bytes(
    inner: EmailMessage,
    signer_cert: CertInput,
    signer_key: KeyInput,
    *,
    key_password: SecretStr | None = None,
    extra_certs: Sequence[CertInput] = (),
) -> bytes:
    """``inner`` as a complete ``multipart/signed`` MIME entity, canonical CRLF bytes.

    These are the bytes to encrypt: re-serialising a parsed copy could refold a header and
    break the signature, so the encryption steps take these bytes as they are.
    """
    content = canonical_bytes(inner)
    signature = sign_detached(
        content, signer_cert, signer_key, key_password=key_password, extra_certs=extra_certs
    )
    boundary = f"----=_smime_{secrets.token_hex(16)}".encode("ascii")
    while boundary in content:  # pragma: no cover - 128 random bits
        boundary = f"----=_smime_{secrets.token_hex(16)}".encode("ascii")
    # RFC 2046 section 5.1.1: the CRLF before a delimiter belongs to the delimiter, so the
    # signed content is exactly ``content`` (which ends in CRLF already).
    if not content.endswith(b"\r\n"):
        content += b"\r\n"
    return b"".join(
        [
            b'Content-Type: multipart/signed; protocol="application/pkcs7-signature";\r\n'
            b' micalg=sha-256; boundary="' + boundary + b'"\r\n',
            b"\r\n",
            b"This is a cryptographically signed message in MIME format.\r\n",
            b"\r\n--" + boundary + b"\r\n",
            content,
            b"\r\n--" + boundary + b"\r\n",
            b'Content-Type: application/pkcs7-signature; name="smime.p7s"\r\n',
            b"Content-Transfer-Encoding: base64\r\n",
            b'Content-Disposition: attachment; filename="smime.p7s"\r\n',
            b"Content-Description: S/MIME Cryptographic Signature\r\n",
            b"\r\n",
            _base64_lines(signature),
            b"\r\n--" + boundary + b"--\r\n",
        ]
    )


def sign_smime(
    inner: EmailMessage,
    signer_cert: CertInput,
    signer_key: KeyInput,
    *,
    key_password: SecretStr | None = None,
    extra_certs: Sequence[CertInput] = (),
) -> EmailMessage:
    """``inner`` signed (not encrypted) as a ``multipart/signed`` body without envelope
    headers; put them on with :func:`hub.crypto.mime_parts.copy_outer_headers`."""
    raw = signed_bytes(
        inner, signer_cert, signer_key, key_password=key_password, extra_certs=extra_certs
    )
    parsed = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    return parsed


def encrypt_cbc(content: bytes, recipient_cert: CertInput) -> bytes:
    """DER CMS EnvelopedData: AES-256-CBC, RSA PKCS#1 v1.5 key transport (``cryptography``)."""
    cert = load_certificate(recipient_cert)
    try:
        return (
            pkcs7.PKCS7EnvelopeBuilder()
            .set_data(content)
            .add_recipient(cert)
            .set_content_encryption_algorithm(algorithms.AES256)
            .encrypt(Encoding.DER, [pkcs7.PKCS7Options.Binary])
        )
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"cannot encrypt to this certificate: {exc}") from exc


def encrypt_gcm(
    content: bytes,
    recipient_cert: CertInput,
    *,
    openssl: str = "openssl",
    timeout: float = 30.0,
) -> bytes:
    """DER CMS AuthEnvelopedData: AES-256-GCM, RSAES-OAEP (SHA-256) key transport.

    Made by ``openssl cms -encrypt -aes-256-gcm``; ``content`` travels through stdin.
    """
    cert = load_certificate(recipient_cert)
    pem = cert.public_bytes(Encoding.PEM)
    with tempfile.TemporaryDirectory(prefix="hub-smime-") as workdir:
        cert_path = Path(workdir) / "recipient.pem"
        cert_path.write_bytes(pem)
        command = [
            openssl,
            "cms",
            "-encrypt",
            "-binary",
            "-outform",
            "DER",
            "-aes-256-gcm",
            "-recip",
            str(cert_path),
            "-keyopt",
            "rsa_padding_mode:oaep",
            "-keyopt",
            "rsa_oaep_md:sha256",
            "-keyopt",
            "rsa_mgf1_md:sha256",
        ]
        try:
            done = subprocess.run(
                command, input=content, capture_output=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise CryptoTimeoutError(f"openssl cms did not finish within {timeout:.0f} s") from exc
        except OSError as exc:
            raise CryptoOperationError(f"cannot run {openssl}: {exc.strerror}") from exc
    if done.returncode != 0 or not done.stdout:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[:2]
        raise CryptoOperationError(f"openssl cms -encrypt failed: {' / '.join(detail)}")
    return done.stdout


def pkcs7_mime_body(der: bytes, smime_type: str) -> EmailMessage:
    """The ``application/pkcs7-mime`` body (RFC 8551 section 3.2) around a DER CMS object."""
    body = EmailMessage()
    body.set_content(
        der,
        maintype="application",
        subtype="pkcs7-mime",
        cte="base64",
        disposition="attachment",
        filename="smime.p7m",
        params={"smime-type": smime_type, "name": "smime.p7m"},
    )
    body["Content-Description"] = "S/MIME Encrypted Message"
    return body


def protect_smime(
    inner: EmailMessage,
    recipient_cert_pem: CertInput,
    signer_cert_pem: CertInput,
    signer_key_pem: KeyInput,
    aead: bool,
    *,
    key_password: SecretStr | None = None,
    extra_certs: Sequence[CertInput] = (),
    openssl: str = "openssl",
) -> EmailMessage:
    """``inner`` signed, then encrypted to the recipient (RFC 8551 section 3.7).

    Pass certificate and key *objects* loaded once at start (:mod:`hub.crypto.smime_certs`):
    PEM is accepted too, but loading an RSA private key runs a ~35 ms consistency check, which
    cut throughput from ~260 to ~26 messages/s in ``bench/crypto_bench.py``.

    ``aead=True`` gives AES-256-GCM AuthEnvelopedData with RSA-OAEP (only for recipients known
    to read it), ``aead=False`` AES-256-CBC EnvelopedData. The result is the
    ``application/pkcs7-mime`` body without envelope headers: put them on with
    :func:`hub.crypto.mime_parts.copy_outer_headers`.
    """
    signed = signed_bytes(
        inner,
        signer_cert_pem,
        signer_key_pem,
        key_password=key_password,
        extra_certs=extra_certs,
    )
    if aead:
        return pkcs7_mime_body(
            encrypt_gcm(signed, recipient_cert_pem, openssl=openssl), AUTH_ENVELOPED
        )
    return pkcs7_mime_body(encrypt_cbc(signed, recipient_cert_pem), ENVELOPED)


async def aprotect_smime(
    inner: EmailMessage,
    recipient_cert_pem: CertInput,
    signer_cert_pem: CertInput,
    signer_key_pem: KeyInput,
    aead: bool,
    *,
    key_password: SecretStr | None = None,
    extra_certs: Sequence[CertInput] = (),
    openssl: str = "openssl",
) -> EmailMessage:
    """:func:`protect_smime` in a worker thread."""
    return await asyncio.to_thread(
        protect_smime,
        inner,
        recipient_cert_pem,
        signer_cert_pem,
        signer_key_pem,
        aead,
        key_password=key_password,
        extra_certs=extra_certs,
        openssl=openssl,
    )


async def asign_smime(
    inner: EmailMessage,
    signer_cert: CertInput,
    signer_key: KeyInput,
    *,
    key_password: SecretStr | None = None,
    extra_certs: Sequence[CertInput] = (),
) -> EmailMessage:
    """:func:`sign_smime` in a worker thread."""
    return await asyncio.to_thread(
        sign_smime,
        inner,
        signer_cert,
        signer_key,
        key_password=key_password,
        extra_certs=extra_certs,
    )
