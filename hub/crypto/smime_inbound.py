"""S/MIME for incoming mail: open EnvelopedData and AuthEnvelopedData, verify SignedData.

``cryptography`` neither verifies CMS signatures nor opens AuthEnvelopedData (RFC 5083), so
every operation here runs ``openssl cms`` (OpenSSL 3.0). Message bytes go through stdin and
stdout; the key passphrase through a pipe of its own (``-passin fd:N``); only public material
(a signature, the signer certificates openssl writes out) touches a temporary file.

Verification is done twice when needed, to tell apart (RFC 8550/8551):

* ``VALID``: the signature is good and the signer's chain ends in the configured CA bundle;
* ``UNTRUSTED``: the signature is good (``-noverify``) but the chain does not verify;
* ``INVALID``: the signature itself does not verify (content changed, broken CMS).

Only the configured bundle is trusted (``-no-CApath -no-CAstore``): the system store is not.
Everything blocks; callers in an event loop use :func:`asyncio.to_thread`.
"""

from __future__ import annotations

import enum
import hashlib
import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from hub.crypto.errors import CryptoOperationError, CryptoTimeoutError

#: DER ContentInfo content types (RFC 5652 section 3, RFC 5083 section 1).
_OID_SIGNED = bytes.fromhex("06092a864886f70d010702")
_OID_ENVELOPED = bytes.fromhex("06092a864886f70d010703")
_OID_AUTH_ENVELOPED = bytes.fromhex("060b2a864886f70d0109100117")


class CmsKind(enum.StrEnum):
    """The content type of a CMS ContentInfo."""

    SIGNED = "signed-data"
    ENVELOPED = "enveloped-data"
    AUTH_ENVELOPED = "authEnveloped-data"
    UNKNOWN = "unknown"


class SmimeSigStatus(enum.StrEnum):
    """The verdict on one S/MIME signature."""

    VALID = "valid"
    UNTRUSTED = "valid_untrusted_signer"
    INVALID = "invalid"


@dataclass(frozen=True)
class SignerCert:
    """The signer's certificate as found in the SignedData."""

    pem: bytes
    fingerprint_sha256: str
    subject: str
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class SmimeVerification:
    """A verdict, the signer (when openssl could name one) and, for opaque data, the content."""

    status: SmimeSigStatus
    signer: SignerCert | None
    content: bytes | None
    detail: str = ""


def cms_kind(der: bytes) -> CmsKind:
    """The content type of a DER ContentInfo (its first OID, within the first bytes)."""
    head = der[:32]
    if _OID_AUTH_ENVELOPED in head:
        return CmsKind.AUTH_ENVELOPED
    if _OID_ENVELOPED in head:
        return CmsKind.ENVELOPED
    if _OID_SIGNED in head:
        return CmsKind.SIGNED
    return CmsKind.UNKNOWN


def _openssl(
    args: Sequence[str],
    stdin: bytes,
    *,
    password: SecretStr | None = None,
    openssl: str = "openssl",
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[bytes]:
    command = [openssl, "cms", *args]
    read_fd = -1
    fds: tuple[int, ...] = ()
    if password is not None:
        read_fd, write_fd = os.pipe()
        os.write(write_fd, password.get_secret_value().encode("utf-8") + b"\n")
        os.close(write_fd)
        command += ["-passin", f"fd:{read_fd}"]
        fds = (read_fd,)
    try:
        return subprocess.run(
            command, input=stdin, capture_output=True, timeout=timeout, check=False, pass_fds=fds
        )
    except subprocess.TimeoutExpired as exc:
        raise CryptoTimeoutError(f"openssl cms did not finish within {timeout:.0f} s") from exc
    except OSError as exc:
        raise CryptoOperationError(f"cannot run {openssl}: {exc.strerror}") from exc
    finally:
        if read_fd >= 0:
            os.close(read_fd)


def _first_error(stderr: bytes) -> str:
    """openssl's first error line, without file paths or data: the reason text only."""
    for line in stderr.decode("utf-8", "replace").splitlines():
        if ":error:" in line:
            return line.rsplit(":", 1)[-1].strip()[:120] or "error"
        if line.strip().startswith("Verification failure"):
            return "verification failure"
    return "openssl cms failed"


def decrypt(
    der: bytes,
    key_path: Path,
    cert_path: Path,
    *,
    password: SecretStr | None = None,
    openssl: str = "openssl",
    timeout: float = 60.0,
) -> bytes:
    """The plaintext of a DER EnvelopedData (CBC) or AuthEnvelopedData (GCM) for our key.

    Raises :class:`CryptoOperationError` when it cannot be opened (not for us, wrong password,
    broken, or a GCM tag that does not match: tampered).
    """
    done = _openssl(
        [
            "-decrypt",
            "-binary",
            "-inform",
            "DER",
            "-inkey",
            str(key_path),
            "-recip",
            str(cert_path),
        ],
        der,
        password=password,
        openssl=openssl,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise CryptoOperationError(f"S/MIME decryption failed: {_first_error(done.stderr)}")
    return done.stdout


def _signer(path: Path) -> SignerCert | None:
    if not path.exists() or not path.stat().st_size:
        return None
    try:
        cert = x509.load_pem_x509_certificates(path.read_bytes())[0]
    except ValueError:
        return None
    return signer_cert_facts(cert)


def signer_cert_facts(cert: x509.Certificate) -> SignerCert:
    """The addresses of a certificate: rfc822Name SANs, then subject emailAddress."""
    addresses: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        addresses += [a.strip().lower() for a in san.get_values_for_type(x509.RFC822Name)]
    except x509.ExtensionNotFound:
        pass
    for attribute in cert.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS):
        value = attribute.value
        text = value if isinstance(value, str) else value.decode("utf-8", "replace")
        if text.strip().lower() not in addresses:
            addresses.append(text.strip().lower())
    der = cert.public_bytes(Encoding.DER)
    return SignerCert(
        pem=cert.public_bytes(Encoding.PEM),
        fingerprint_sha256=hashlib.sha256(der).hexdigest().upper(),
        subject=cert.subject.rfc4514_string(),
        addresses=tuple(addresses),
    )


def _verify(
    signature_der: bytes,
    content: bytes | None,
    ca_file: Path | None,
    *,
    openssl: str,
    timeout: float,
) -> SmimeVerification:
    with tempfile.TemporaryDirectory(prefix="hub-smimesig-") as workdir:
        signer_path = Path(workdir) / "signer.pem"
        base = ["-verify", "-binary", "-inform", "DER", "-signer", str(signer_path)]
        if content is not None:
            sig_path = Path(workdir) / "signature.der"
            sig_path.write_bytes(signature_der)
            # The (possibly decrypted) content goes through stdin, never to disk.
            base += ["-in", str(sig_path), "-content", "/dev/stdin", "-out", "/dev/null"]
            stdin = content
        else:
            stdin = signature_der
        attempts: list[tuple[SmimeSigStatus, list[str]]] = []
        if ca_file is not None:
            attempts.append(
                (SmimeSigStatus.VALID, ["-CAfile", str(ca_file), "-no-CApath", "-no-CAstore"])
            )
        attempts.append((SmimeSigStatus.UNTRUSTED, ["-noverify"]))
        detail = ""
        for verdict, extra in attempts:
            done = _openssl([*base, *extra], stdin, openssl=openssl, timeout=timeout)
            if done.returncode == 0:
                return SmimeVerification(
                    status=verdict,
                    signer=_signer(signer_path),
                    content=done.stdout if content is None else None,
                    detail=detail,
                )
            detail = detail or _first_error(done.stderr)
        # The signature does not verify: the signer certificate is still worth naming.
        return SmimeVerification(
            status=SmimeSigStatus.INVALID,
            signer=_signer(signer_path) or _embedded_signer(signature_der, openssl=openssl),
            content=None,
            detail=detail,
        )


def _embedded_signer(signature_der: bytes, *, openssl: str) -> SignerCert | None:
    done = subprocess.run(
        [openssl, "pkcs7", "-inform", "DER", "-print_certs"],
        input=signature_der,
        capture_output=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0 or b"BEGIN CERTIFICATE" not in done.stdout:
        return None
    try:
        return signer_cert_facts(x509.load_pem_x509_certificates(done.stdout)[0])
    except ValueError:
        return None


def verify_detached(
    content: bytes,
    signature_der: bytes,
    ca_file: Path | None,
    *,
    openssl: str = "openssl",
    timeout: float = 60.0,
) -> SmimeVerification:
    """Verify a detached SignedData over exactly ``content`` (canonical CRLF bytes)."""
    return _verify(signature_der, content, ca_file, openssl=openssl, timeout=timeout)


def verify_opaque(
    signed_der: bytes, ca_file: Path | None, *, openssl: str = "openssl", timeout: float = 60.0
) -> SmimeVerification:
    """Verify an opaque (encapsulated) SignedData; the content is returned only when the
    signature is good (``VALID`` or ``UNTRUSTED``)."""
    return _verify(signed_der, None, ca_file, openssl=openssl, timeout=timeout)


def extract_opaque_content(signed_der: bytes, *, openssl: str = "openssl") -> bytes | None:
    """The encapsulated content of a SignedData whose signature did not verify, so that a
    person can still read what was sent (marked as not signed)."""
    done = _openssl(
        ["-verify", "-binary", "-inform", "DER", "-noverify", "-nosigs"],
        signed_der,
        openssl=openssl,
    )
    return done.stdout if done.returncode == 0 else None
