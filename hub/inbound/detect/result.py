"""The verdict of detection: what kind of message this is, the evidence, and why.

Every rule that ran leaves a :class:`RuleResult` (its name, its outcome, the reason in words),
in the order it ran, so the decision can be shown to a collector (as Mailman records the rules
that hit and missed on each message).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    """What a message is, as far as the hub is concerned."""

    #: written by a person (the debtor, or someone for them)
    REPLY = "reply"
    #: an out-of-office or other automatic answer (RFC 3834); never answer it
    AUTO_REPLY = "auto_reply"
    #: a delivery failure or delay report (RFC 3464 or an MTA's own format)
    BOUNCE = "bounce"
    #: a report that a message was delivered or relayed (RFC 3464 Action: delivered/relayed)
    DELIVERY_REPORT = "delivery_report"
    #: a message disposition notification (RFC 8098)
    READ_RECEIPT = "read_receipt"
    #: an abuse or feedback report (RFC 5965 ARF, and unsubscribe notices)
    FEEDBACK_REPORT = "feedback_report"


class Outcome(StrEnum):
    """What one rule concluded."""

    #: the rule decided the kind
    HIT = "hit"
    #: the rule looked and found nothing
    MISS = "miss"
    #: the rule found something, too weak to decide alone
    WEAK = "weak"
    #: the rule found evidence that the message is from a person
    PERSON = "person"
    #: the rule did not run because an earlier rule decided
    SKIPPED = "skipped"


@dataclass(frozen=True)
class RuleResult:
    """One rule's entry in the explanation."""

    rule: str
    outcome: Outcome
    reason: str


@dataclass(frozen=True)
class BouncedRecipient:
    """One recipient a bounce reports on."""

    address: str
    #: RFC 3464 Action (failed, delayed, ...), or "failed" for a non-standard report
    action: str
    #: RFC 3463 enhanced status code, e.g. "5.1.1" ("" if none could be found or inferred)
    status: str
    #: the SMTP reply code, e.g. "550" ("" if none)
    reply_code: str
    #: the reason label, in sisimai's vocabulary (userunknown, mailboxfull, ...) or "undefined"
    reason: str
    #: the failure will not go away by retrying (a 5.x.x status)
    permanent: bool
    #: the address is dead: stop sending to it (userunknown, hostunknown, hasmoved, ...)
    hard: bool
    #: the server's words (may name addresses: never log it)
    diagnostic: str = ""
    remote_mta: str = ""
    original_recipient: str = ""


@dataclass(frozen=True)
class Bounce:
    """What a bounce says."""

    recipients: tuple[BouncedRecipient, ...]
    #: "rfc3464" or the name of the non-standard format that matched
    format: str
    #: the Message-ID of the message that bounced (ours), from the returned copy or its headers
    original_message_id: str | None
    #: the addresses the bounce was delivered to (X-Original-To, Delivered-To, Envelope-To,
    #: To): one of them is our VERP return path, for ``parse_bounce_address``
    envelope_to: tuple[str, ...]
    reporting_mta: str = ""

    @property
    def permanent(self) -> bool:
        """Every reported recipient failed permanently."""
        return bool(self.recipients) and all(r.permanent for r in self.recipients)

    @property
    def hard(self) -> bool:
        """Every reported recipient is a dead address."""
        return bool(self.recipients) and all(r.hard for r in self.recipients)

    @property
    def status(self) -> str:
        """The first recipient's status ("" if none)."""
        return self.recipients[0].status if self.recipients else ""


@dataclass(frozen=True)
class ReadReceipt:
    """An RFC 8098 message disposition notification."""

    #: e.g. "manual-action/MDN-sent-manually; displayed"
    disposition: str
    #: "displayed", "deleted", "dispatched", "processed" (the disposition type)
    disposition_type: str
    original_message_id: str | None
    final_recipient: str


@dataclass(frozen=True)
class FeedbackReport:
    """An RFC 5965 abuse report, or a provider's own complaint or unsubscribe notice."""

    #: abuse, fraud, virus, other, not-spam, auth-failure, opt-out, ...
    feedback_type: str
    original_mail_from: str
    original_rcpt_to: tuple[str, ...]
    original_message_id: str | None
    source_ip: str = ""
    #: "rfc5965" or the name of the non-standard format
    format: str = "rfc5965"


@dataclass(frozen=True)
class AutoReply:
    """Why a message was taken for an automatic answer."""

    #: the strongest signal, e.g. "Auto-Submitted: auto-replied" or "subject"
    signal: str
    #: "vacation" for an out-of-office answer, "auto-generated" for other automatic mail
    category: str


@dataclass(frozen=True)
class Detection:
    """The verdict of :func:`hub.inbound.detect.detect`, with its explanation."""

    kind: Kind
    #: every rule in the order it ran
    rules: tuple[RuleResult, ...]
    bounce: Bounce | None = None
    read_receipt: ReadReceipt | None = None
    feedback: FeedbackReport | None = None
    auto_reply: AutoReply | None = None
    #: the addresses the message was delivered to (for VERP parsing), whatever its kind
    envelope_to: tuple[str, ...] = field(default=())

    @property
    def decided_by(self) -> RuleResult | None:
        """The rule that decided the kind (None for a person's reply)."""
        for result in self.rules:
            if result.outcome is Outcome.HIT:
                return result
        return None

    def explain(self) -> list[str]:
        """One line per rule, for a person: ``"rule: outcome (reason)"``."""
        return [f"{r.rule}: {r.outcome.value} ({r.reason})" for r in self.rules]
