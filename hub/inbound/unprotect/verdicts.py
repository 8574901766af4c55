"""Turn what gpg and openssl reported into the hub's verdicts, checking the signer against From.

RFC 8551 section 3.1 and RFC 3156 section 5 leave it to the receiver to match the signer to the
sender: a good signature by a key or certificate that does not carry the From address is
reported as :attr:`~hub.inbound.unprotect.result.SignatureVerdict.SIGNER_MISMATCH`, never as
valid.
"""

from __future__ import annotations

from pathlib import Path

from hub.crypto import pgp_inbound
from hub.crypto.errors import CryptoOperationError, CryptoTimeoutError
from hub.crypto.pgp_inbound import DecryptStatus, PgpResult, PgpSignature, SigStatus
from hub.crypto.smime_inbound import SmimeSigStatus, SmimeVerification
from hub.inbound.unprotect.result import (
    DecryptionCheck,
    DecryptionVerdict,
    Method,
    SignatureCheck,
    SignatureVerdict,
)

_PGP_FAILURES = {
    SigStatus.BAD: SignatureVerdict.INVALID,
    SigStatus.NO_PUBLIC_KEY: SignatureVerdict.UNKNOWN_KEY,
    SigStatus.EXPIRED_KEY: SignatureVerdict.EXPIRED_KEY,
    SigStatus.REVOKED_KEY: SignatureVerdict.REVOKED_KEY,
    SigStatus.EXPIRED_SIGNATURE: SignatureVerdict.INVALID,
    SigStatus.ERROR: SignatureVerdict.ERROR,
}


def pgp_signature_check(
    signature: PgpSignature, from_address: str | None, home: Path, gpg_binary: str = "gpg"
) -> SignatureCheck:
    """The verdict on one OpenPGP signature; the signer's user ids come from ``home``."""
    addresses: tuple[str, ...] = ()
    signer: str | None = None
    if signature.primary_fingerprint:
        try:
            key = pgp_inbound.list_public_key(
                home, signature.primary_fingerprint, binary=gpg_binary
            )
        except (CryptoOperationError, CryptoTimeoutError):
            key = None
        if key is not None:
            addresses = key.emails
            uids = [uid for uid in key.uids if uid.valid]
            chosen = next((u for u in uids if from_address and u.email == from_address), None)
            chosen = chosen or (uids[0] if uids else None)
            signer = chosen.text if chosen else None
    matches = bool(from_address) and from_address in addresses
    if signature.valid:
        verdict = SignatureVerdict.VALID if matches else SignatureVerdict.SIGNER_MISMATCH
    else:
        verdict = _PGP_FAILURES.get(signature.status, SignatureVerdict.ERROR)
    return SignatureCheck(
        method=Method.PGP,
        verdict=verdict,
        good=signature.valid,
        trusted=signature.trusted,
        matches_from=matches,
        signer=signer,
        signer_addresses=addresses,
        fingerprint=signature.primary_fingerprint,
        detail=signature.status.value,
    )


def smime_signature_check(
    verification: SmimeVerification, from_address: str | None
) -> SignatureCheck:
    """The verdict on one S/MIME signature."""
    cert = verification.signer
    addresses = cert.addresses if cert else ()
    matches = bool(from_address) and from_address in addresses
    good = verification.status is not SmimeSigStatus.INVALID
    if not good:
        verdict = SignatureVerdict.INVALID
    elif not matches:
        verdict = SignatureVerdict.SIGNER_MISMATCH
    elif verification.status is SmimeSigStatus.UNTRUSTED:
        verdict = SignatureVerdict.VALID_UNTRUSTED
    else:
        verdict = SignatureVerdict.VALID
    signer = None
    if addresses:
        signer = next((a for a in addresses if a == from_address), addresses[0])
    return SignatureCheck(
        method=Method.SMIME,
        verdict=verdict,
        good=good,
        trusted=verification.status is SmimeSigStatus.VALID,
        matches_from=matches,
        signer=signer,
        signer_addresses=addresses,
        fingerprint=cert.fingerprint_sha256 if cert else None,
        detail=verification.detail,
    )


_PGP_DECRYPT = {
    DecryptStatus.OK: DecryptionVerdict.DECRYPTED,
    DecryptStatus.NO_SECRET_KEY: DecryptionVerdict.NO_KEY,
    DecryptStatus.BAD_PASSPHRASE: DecryptionVerdict.NO_KEY,
    DecryptStatus.NO_INTEGRITY: DecryptionVerdict.REFUSED_NO_INTEGRITY,
    DecryptStatus.FAILED: DecryptionVerdict.FAILED,
    DecryptStatus.NOT_ENCRYPTED: DecryptionVerdict.FAILED,
}


def pgp_decryption_check(result: PgpResult, ciphertext: bytes) -> DecryptionCheck:
    """The verdict on one OpenPGP encrypted layer, with its ciphertext."""
    return DecryptionCheck(
        method=Method.PGP,
        verdict=_PGP_DECRYPT[result.decryption],
        ciphertext=ciphertext,
        integrity_protected=result.integrity_protected,
        detail="; ".join((result.decryption.value, *result.errors)),
    )
