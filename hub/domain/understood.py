"""What the inbound stages understood of one message, as the next stage (routing) reads it.

:class:`Understood` is frozen and holds no I/O. It is rebuilt from the two stored halves of an
``inbound_messages`` row: ``analysis`` (plain JSON, no personal data: the kind, the crypto
verdicts, which rules fired) and ``understood`` (sealed at rest: addresses, subject, texts).
A row in state ``processed`` has both: "understood, waiting for routing".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.domain.inbound import MailAddress
from hub.domain.routing import MessageKind, RoutingInput


@dataclass(frozen=True)
class CryptoFacts:
    """The protection verdicts of one message (no addresses: ``signer`` lives apart)."""

    encrypted: bool = False
    #: ``pgp``, ``smime`` or None
    method: str | None = None
    decrypted: bool = False
    #: ``decrypted``, ``no_key``, ``refused_no_integrity_protection``, ``failed`` per layer
    decryptions: tuple[str, ...] = ()
    signed: bool = False
    signature_valid: bool = False
    signature_verdict: str | None = None
    signer_fingerprint: str | None = None
    signer_matches_from: bool | None = None
    trusted: bool | None = None
    integrity_protected: bool | None = None
    errors: tuple[str, ...] = ()

    @property
    def refused(self) -> bool:
        """An OpenPGP layer without integrity protection was refused (EFAIL)."""
        return "refused_no_integrity_protection" in self.decryptions

    @property
    def verified_sender(self) -> bool:
        """A good, trusted signature by a key that carries the From address."""
        return self.signature_valid and bool(self.signer_matches_from) and bool(self.trusted)


@dataclass(frozen=True)
class Understood:
    """One inbound message after parse, unprotect, detect and reply-text extraction."""

    inbound_id: int
    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    subject: str
    date: datetime | None
    from_: MailAddress | None
    to: tuple[MailAddress, ...]
    cc: tuple[MailAddress, ...]
    #: reply, auto_reply, bounce, read_receipt or feedback_report (the routing vocabulary)
    kind: MessageKind
    #: the detector's own kind (``delivery_report`` is told apart here)
    detected_kind: str
    #: the whole readable text (decrypted parts only when the message was encrypted)
    text: str
    #: what the sender wrote (the whole text for anything but a reply)
    reply_text: str
    signature: str | None
    crypto: CryptoFacts
    #: the full signer (``Name <address>``) of the best signature, or None
    signer: str | None = None
    delivered_to: tuple[str, ...] = ()
    x_original_to: tuple[str, ...] = ()
    envelope_to: tuple[str, ...] = ()
    authentication_results: tuple[str, ...] = ()
    #: for reports: the Message-ID of our message they are about
    original_message_id: str | None = None
    bounce_recipients: tuple[str, ...] = ()
    bounce_permanent: bool | None = None
    bounce_status: str | None = None
    attachment_count: int = 0
    #: the non-personal facts as stored (rules, defects, ...) for display
    analysis: dict[str, Any] = field(default_factory=dict)

    def routing_input(self, received_at: datetime | None = None) -> RoutingInput:
        """What :func:`hub.routing.service.route` needs from this message."""
        return RoutingInput(
            message_id=self.message_id,
            from_address=self.from_.address.lower() if self.from_ else "",
            kind=self.kind,
            from_name=self.from_.name if self.from_ else "",
            to=tuple(a.address.lower() for a in self.to),
            cc=tuple(a.address.lower() for a in self.cc),
            delivered_to=self.delivered_to,
            x_original_to=self.x_original_to,
            in_reply_to=self.in_reply_to,
            references=self.references,
            subject=self.subject,
            reply_text=self.reply_text,
            full_text=self.text,
            authentication_results=self.authentication_results,
            original_message_id=self.original_message_id,
            envelope_to=self.envelope_to,
            received_at=received_at,
        )
