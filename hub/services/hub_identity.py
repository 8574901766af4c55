"""The hub's own signing identity: its OpenPGP key and S/MIME certificate, made and loaded.

:func:`load_identity` reads the ``[signing]`` settings into a :class:`HubIdentity`: the GnuPG
home (which also holds the debtors' public keys), the hub's OpenPGP signing key with its
passphrase and the Autocrypt header that offers it, and the S/MIME signer certificate and key.
It checks what it loads (the secret key is there and signs with the passphrase; the S/MIME key
belongs to the certificate), so a broken configuration fails once, at start, with a message
naming the setting, instead of on every mail.

:func:`create_pgp_identity` and :func:`create_smime_identity` make new ones for
``hub keys init-signing``. Secret material is written with mode 0600 and never printed.

Everything here blocks (gpg, file I/O); call it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import formataddr
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import SecretStr

from hub.config import Settings
from hub.crypto.autocrypt import autocrypt_header
from hub.crypto.errors import CertificateError, CryptoOperationError
from hub.crypto.gpg_process import run_gpg
from hub.crypto.pgp import PgpKeystore
from hub.crypto.smime_certs import SigningKey, load_certificate, load_signing_key
from hub.errors import ConfigError
from hub.security.secret_files import write_secret

log = logging.getLogger(__name__)

_FPR = re.compile(r"KEY_CREATED [BP] ([0-9A-F]{40,64})")


@dataclass(frozen=True)
class SmimeSigner:
    cert: x509.Certificate
    key: SigningKey


@dataclass
class HubIdentity:
    """What the hub signs with, and its GnuPG home (which also holds debtors' keys)."""

    keystore: PgpKeystore
    from_address: str
    pgp_fingerprint: str | None = None
    pgp_passphrase: SecretStr | None = None
    #: the value of the ``Autocrypt:`` header (None when the hub has no OpenPGP key)
    autocrypt: str | None = None
    smime: SmimeSigner | None = None

    def close(self) -> None:
        self.keystore.close()


def open_keystore(settings: Settings) -> PgpKeystore:
    """The hub's GnuPG home (created with mode 0700 if missing)."""
    home = settings.signing.gnupg_home_in(settings.hub.data_dir)
    return PgpKeystore(home, s2k_count=settings.signing.gpg_s2k_count)


def _load_pgp(identity: HubIdentity, settings: Settings) -> None:
    signing = settings.signing
    if signing.pgp_fingerprint is None:
        return
    fpr = signing.pgp_fingerprint.replace(" ", "").upper()
    store = identity.keystore
    try:
        found = store.list_keys(fingerprints=[fpr], secret=True)
    except CryptoOperationError as exc:
        raise ConfigError(f"signing.pgp_fingerprint: {exc}") from None
    if not found or not found[0].can_sign(datetime.now(UTC)):
        raise ConfigError(
            f"signing.pgp_fingerprint: no usable secret key {fpr[-16:]} in {store.home} "
            "(expired, revoked, or not there: run 'hub keys init-signing --pgp')"
        )
    try:
        # a wrong passphrase fails here once, instead of on every mail
        store.sign_detached(b"hub signing check\r\n", fpr, signing.pgp_passphrase)
    except CryptoOperationError:
        raise ConfigError(
            "signing.pgp_passphrase: the hub's OpenPGP key does not sign with it "
            "(wrong or missing passphrase)"
        ) from None
    try:
        keydata = store.export_minimal_key(fpr, identity.from_address)
    except CryptoOperationError:
        raise ConfigError(
            "signing.pgp_fingerprint: the key has no user id for smtp.from_address, so it "
            "cannot be offered by Autocrypt"
        ) from None
    identity.pgp_fingerprint = fpr
    identity.pgp_passphrase = signing.pgp_passphrase
    identity.autocrypt = autocrypt_header(identity.from_address, keydata)


def _load_smime(identity: HubIdentity, settings: Settings) -> None:
    signing = settings.signing
    if signing.smime_cert_file is None and signing.smime_key_file is None:
        return
    if signing.smime_cert_file is None or signing.smime_key_file is None:
        raise ConfigError("signing: set both smime_cert_file and smime_key_file, or neither")
    try:
        cert = load_certificate(signing.smime_cert_file.read_bytes())
        key = load_signing_key(signing.smime_key_file.read_bytes(), signing.smime_key_passphrase)
    except OSError as exc:
        raise ConfigError(f"signing: cannot read {exc.filename}: {exc.strerror}") from None
    except CertificateError as exc:
        raise ConfigError(f"signing.smime_*: {exc}") from None
    der = serialization.Encoding.DER
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(der, spki) != key.public_key().public_bytes(der, spki):
        raise ConfigError("signing.smime_key_file: the key does not belong to the certificate")
    if cert.not_valid_after_utc <= datetime.now(UTC):
        raise ConfigError("signing.smime_cert_file: the certificate has expired")
    identity.smime = SmimeSigner(cert=cert, key=key)


def load_identity(settings: Settings) -> HubIdentity:
    """The hub's identity from ``[signing]``; :class:`ConfigError` names what is wrong."""
    identity = HubIdentity(
        keystore=open_keystore(settings), from_address=settings.smtp.from_address
    )
    try:
        _load_pgp(identity, settings)
        _load_smime(identity, settings)
    except BaseException:
        identity.close()
        raise
    return identity


# -- creating a new identity (hub keys init-signing) --------------------------------------------


def _gpg(home: Path, args: list[str], passphrase: str) -> str:
    done = run_gpg(
        "gpg",
        home,
        args,
        passphrase.encode() + b"\n",
        timeout=120,
        options=["--pinentry-mode", "loopback", "--passphrase-fd", "0"],
    )
    if done.returncode != 0:
        raise CryptoOperationError(f"gpg {args[0]} failed (exit status {done.returncode})")
    return done.stderr.decode("utf-8", "replace")


def create_pgp_identity(
    keystore: PgpKeystore, name: str, address: str, passphrase: SecretStr, *, years: int = 2
) -> str:
    """A new ed25519 signing key with a cv25519 encryption subkey for ``name <address>`` in the
    hub's home, protected by ``passphrase``; returns its fingerprint."""
    existing = [
        key for key in keystore.list_keys(secret=True) if key.has_address(address) and key.usable()
    ]
    if existing:
        raise ConfigError(
            f"the GnuPG home {keystore.home} already holds a secret key for the hub's address "
            f"(fingerprint {existing[0].fingerprint}); set signing.pgp_fingerprint to it"
        )
    uid = formataddr((name, address))
    secret = passphrase.get_secret_value()
    status = _gpg(keystore.home, ["--quick-gen-key", uid, "ed25519", "sign", f"{years}y"], secret)
    match = _FPR.search(status)
    if match is None:
        raise CryptoOperationError("gpg made no key")
    fingerprint = match.group(1)
    _gpg(keystore.home, ["--quick-add-key", fingerprint, "cv25519", "encr", f"{years}y"], secret)
    log.info("created the hub's OpenPGP key %s", fingerprint[-16:])
    return fingerprint


@dataclass(frozen=True)
class SmimeFiles:
    cert: Path
    key: Path
    csr: Path


def create_smime_identity(
    directory: Path, name: str, address: str, passphrase: SecretStr, *, days: int = 730
) -> SmimeFiles:
    """A new RSA-3072 key, a self-signed S/MIME certificate for ``address`` and a CSR for the
    same key (to have a CA sign it). The key is encrypted with ``passphrase``, mode 0600."""
    files = SmimeFiles(
        directory / "smime-cert.pem", directory / "smime-key.pem", directory / "smime.csr"
    )
    taken = [str(p) for p in (files.cert, files.key, files.csr) if p.exists()]
    if taken:
        raise ConfigError("refusing to overwrite existing files: " + ", ".join(taken))
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, address),
        ]
    )
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        (x509.SubjectAlternativeName([x509.RFC822Name(address)]), False),
        (
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        ),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False),
    ]
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    csr_builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
        csr_builder = csr_builder.add_extension(extension, critical=critical)
    cert = builder.sign(key, hashes.SHA256())
    csr = csr_builder.sign(key, hashes.SHA256())
    encrypted_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.get_secret_value().encode("utf-8")),
    )
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_secret(files.key, encrypted_key)
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.csr.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    log.info("created the hub's S/MIME certificate (serial %x)", cert.serial_number)
    return files


def new_passphrase() -> SecretStr:
    """A long random passphrase for a key the hub alone uses."""
    return SecretStr(secrets.token_urlsafe(32))
