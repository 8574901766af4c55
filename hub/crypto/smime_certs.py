"""X.509 material for S/MIME: load certificates and keys, and choose a recipient's certificate.

A certificate is usable to encrypt mail to an address (RFC 8550 section 4.4, RFC 8551 section
2.3) when, at the moment of sending:

* it is inside its validity period;
* its public key is RSA (the hub's key transport is RSA PKCS#1 v1.5 or RSA-OAEP);
* keyUsage, if present, allows keyEncipherment;
* extendedKeyUsage, if present, allows emailProtection (or anyExtendedKeyUsage);
* an rfc822Name in its subjectAltName equals the address (case-insensitively).

Of the usable certificates the newest (latest notBefore, then latest notAfter) wins. Chain
validation against trust anchors is not done here: the certificate comes from the debtor or the
collector, and the hub uses it only to encrypt to that person.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_der_private_key, load_pem_private_key
from cryptography.x509.oid import ExtendedKeyUsageOID
from pydantic import SecretStr

from hub.crypto.errors import CertificateError

#: The private-key types PKCS7SignatureBuilder can sign with.
SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def load_certificates(data: bytes | str) -> list[x509.Certificate]:
    """Every certificate in ``data`` (one or more PEM blocks, or a single DER certificate).

    Raises :class:`CertificateError` (a ``UserError``) when there is none or one is broken.
    """
    raw = data.encode("ascii", "replace") if isinstance(data, str) else data
    if not raw.strip():
        raise CertificateError("the certificate file is empty")
    try:
        if b"-----BEGIN" in raw:
            certs = x509.load_pem_x509_certificates(raw)
        else:
            certs = [x509.load_der_x509_certificate(raw)]
    except ValueError as exc:
        raise CertificateError("the certificate file holds no readable X.509 certificate") from exc
    if not certs:
        raise CertificateError("the certificate file holds no X.509 certificate")
    return certs


def load_certificate(data: bytes | str | x509.Certificate) -> x509.Certificate:
    """The first certificate in ``data`` (or ``data`` itself if it already is one)."""
    if isinstance(data, x509.Certificate):
        return data
    return load_certificates(data)[0]


def load_signing_key(data: bytes | str, password: SecretStr | None = None) -> SigningKey:
    """An RSA or EC private key from PEM or DER, decrypted with ``password`` if given."""
    raw = data.encode("ascii", "replace") if isinstance(data, str) else data
    secret = password.get_secret_value().encode("utf-8") if password is not None else None
    try:
        if b"-----BEGIN" in raw:
            key = load_pem_private_key(raw, secret)
        else:
            key = load_der_private_key(raw, secret)
    except (ValueError, TypeError) as exc:
        # The exception text of cryptography says "wrong password" or "could not deserialize";
        # it never contains key material, but we keep our own words anyway.
        raise CertificateError(
            "the S/MIME private key cannot be read (broken file or wrong password)"
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CertificateError("the S/MIME signing key must be an RSA or EC key")
    return key


def certificate_emails(cert: x509.Certificate) -> tuple[str, ...]:
    """The rfc822Name entries of the subjectAltName, lower-cased."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(name.strip().lower() for name in san.get_values_for_type(x509.RFC822Name))


def unusable_reason(
    cert: x509.Certificate, address: str, now: datetime | None = None
) -> str | None:
    """Why ``cert`` cannot be used to encrypt mail to ``address`` at ``now``; None if it can."""
    moment = now or datetime.now(UTC)
    if moment < cert.not_valid_before_utc:
        return "not valid yet"
    if moment >= cert.not_valid_after_utc:
        return "expired"
    if not isinstance(cert.public_key(), rsa.RSAPublicKey):
        return "not an RSA key"
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.key_encipherment:
            return "keyUsage does not allow keyEncipherment"
    except x509.ExtensionNotFound:
        pass
    try:
        extended = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        allowed = {ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}
        if not allowed.intersection(extended):
            return "extendedKeyUsage does not allow emailProtection"
    except x509.ExtensionNotFound:
        pass
    if address.strip().lower() not in certificate_emails(cert):
        return "address not in subjectAltName"
    return None


def choose_certificate(
    certs: Iterable[x509.Certificate], address: str, now: datetime | None = None
) -> x509.Certificate | None:
    """The certificate to encrypt mail for ``address`` to, or None: see the module docstring."""
    moment = now or datetime.now(UTC)
    usable = [cert for cert in certs if unusable_reason(cert, address, moment) is None]
    if not usable:
        return None
    return max(usable, key=lambda cert: (cert.not_valid_before_utc, cert.not_valid_after_utc))
