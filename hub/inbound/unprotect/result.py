"""The frozen results of unprotecting one message: parts, verdicts, learnt keys.

EFAIL (Poddebniak et al., 2018) works by wrapping a ciphertext in attacker-controlled
unencrypted parts so that the victim's client renders them as one document. Here every leaf
part carries its own protection (:class:`ProtectedPart`), and :meth:`Unprotected.text_body`
builds the text of an encrypted message from decrypted parts only; the unencrypted parts are
listed apart (:meth:`Unprotected.unencrypted_parts`). Nothing here renders HTML or loads
anything remote.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field


class Method(enum.StrEnum):
    """The protection scheme of a layer."""

    PGP = "pgp"
    SMIME = "smime"


class SignatureVerdict(enum.StrEnum):
    """One signature's verdict, most useful first."""

    VALID = "valid"
    #: Good signature, but the S/MIME chain does not end in the configured CA bundle.
    VALID_UNTRUSTED = "valid_untrusted_signer"
    #: Good signature by a key or certificate that does not carry the From address.
    SIGNER_MISMATCH = "signer_mismatch"
    INVALID = "invalid"
    UNKNOWN_KEY = "unknown_key"
    EXPIRED_KEY = "expired_key"
    REVOKED_KEY = "revoked_key"
    ERROR = "error"


class DecryptionVerdict(enum.StrEnum):
    """One encrypted layer's verdict."""

    DECRYPTED = "decrypted"
    NO_KEY = "no_key"
    #: OpenPGP without MDC/AEAD: refused, no plaintext returned (EFAIL).
    REFUSED_NO_INTEGRITY = "refused_no_integrity_protection"
    FAILED = "failed"


@dataclass(frozen=True)
class SignatureCheck:
    """One signature found in the message."""

    method: Method
    verdict: SignatureVerdict
    #: Cryptographically good (whatever the trust and the From check).
    good: bool
    #: The chain (S/MIME) or the key's validity (OpenPGP) is trusted.
    trusted: bool
    #: The signer's addresses contain the From address.
    matches_from: bool
    #: Display form of the signer: ``Name <address>`` from the key or certificate, or None.
    signer: str | None
    signer_addresses: tuple[str, ...]
    #: Primary key fingerprint (OpenPGP) or SHA-256 of the certificate (S/MIME).
    fingerprint: str | None
    detail: str = ""


@dataclass(frozen=True)
class DecryptionCheck:
    """One encrypted layer: the verdict, and the ciphertext exactly as received."""

    method: Method
    verdict: DecryptionVerdict
    ciphertext: bytes
    integrity_protected: bool | None
    detail: str = ""


@dataclass(frozen=True)
class LearntKey:
    """A debtor's key found in the message, for the caller to store (``DebtorKey``)."""

    #: ``"pgp"`` or ``"smime"``.
    kind: str
    fingerprint: str
    key_bytes: bytes
    addresses: tuple[str, ...]
    #: ``"autocrypt"``, ``"attachment"`` or ``"smime-signature"``.
    source: str


@dataclass(frozen=True)
class ProtectedPart:
    """One leaf MIME part (or inline-PGP segment) with its own protection status."""

    content_type: str
    payload: bytes
    filename: str | None
    charset: str | None
    is_attachment: bool
    #: Came out of a decrypted layer (PGP/MIME, inline PGP, S/MIME enveloped).
    encrypted: bool
    #: Covered by a cryptographically good signature.
    signed: bool
    method: Method | None = None

    @property
    def size(self) -> int:
        return len(self.payload)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.payload).hexdigest()

    def text(self) -> str:
        """The payload as text (its charset, then UTF-8, never failing)."""
        for charset in (self.charset, "utf-8"):
            if not charset:
                continue
            try:
                return self.payload.decode(charset)
            except (LookupError, UnicodeDecodeError):
                continue
        return self.payload.decode("latin-1")


@dataclass(frozen=True)
class Unprotected:
    """Everything :func:`hub.inbound.unprotect.unprotect` learnt from one message."""

    raw: bytes
    subject: str | None
    from_name: str | None
    from_address: str | None
    message_id: str | None
    parts: tuple[ProtectedPart, ...]
    decryptions: tuple[DecryptionCheck, ...] = ()
    signatures: tuple[SignatureCheck, ...] = ()
    learnt_keys: tuple[LearntKey, ...] = ()
    errors: tuple[str, ...] = field(default=())

    @property
    def encrypted(self) -> bool:
        return bool(self.decryptions)

    @property
    def decrypted(self) -> bool:
        """Every encrypted layer was opened (and at least one existed)."""
        return self.encrypted and all(
            d.verdict is DecryptionVerdict.DECRYPTED for d in self.decryptions
        )

    @property
    def method(self) -> Method | None:
        methods = [d.method for d in self.decryptions] + [s.method for s in self.signatures]
        return methods[0] if methods else None

    @property
    def integrity_protected(self) -> bool | None:
        values = [d.integrity_protected for d in self.decryptions]
        if any(v is False for v in values):
            return False
        return True if values and all(values) else None

    @property
    def signed(self) -> bool:
        return bool(self.signatures)

    @property
    def best_signature(self) -> SignatureCheck | None:
        """The good signature matching From if any, else the first good one, else the first."""
        ranked = sorted(self.signatures, key=lambda s: (not s.good, not s.matches_from))
        return ranked[0] if ranked else None

    @property
    def signature_valid(self) -> bool:
        best = self.best_signature
        return best is not None and best.good

    def body_parts(self) -> tuple[ProtectedPart, ...]:
        """The text/plain body parts to show: only decrypted ones when the message was
        encrypted (EFAIL), every inline one otherwise."""
        text = [p for p in self.parts if not p.is_attachment and p.content_type == "text/plain"]
        if self.encrypted:
            return tuple(p for p in text if p.encrypted)
        return tuple(text)

    def text_body(self) -> str:
        """The text a person reads, never mixing decrypted and unencrypted parts."""
        return "\n".join(p.text().strip("\r\n") for p in self.body_parts())

    def unencrypted_parts(self) -> tuple[ProtectedPart, ...]:
        """Parts of an encrypted message that were not inside the encryption: show apart."""
        if not self.encrypted:
            return ()
        return tuple(p for p in self.parts if not p.encrypted)

    def unencrypted_text(self) -> str:
        """The text/plain of the unencrypted parts of an encrypted message, to show apart and
        marked as such (never joined to :meth:`text_body`)."""
        return "\n".join(
            p.text().strip("\r\n")
            for p in self.unencrypted_parts()
            if not p.is_attachment and p.content_type == "text/plain"
        )

    def attachments(self) -> tuple[ProtectedPart, ...]:
        """Attachments; of an encrypted message only the decrypted ones."""
        items = [p for p in self.parts if p.is_attachment]
        if self.encrypted:
            return tuple(p for p in items if p.encrypted)
        return tuple(items)
