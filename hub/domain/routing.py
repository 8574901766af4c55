"""What routing is given and what it decides: pure, frozen value types with a JSON form.

:class:`RoutingInput` is everything the routing rules may look at, already parsed by the
inbound stages (so routing depends on none of them). :class:`RouteDecision` says which case a
message belongs to, or that it goes to triage and why, with the outcome of every rule
(:class:`RuleOutcome`) so that a collector can see how the decision was reached, and whether
the sender is trusted to change the case.

The JSON form (:meth:`RouteDecision.to_json`) is meant for unencrypted storage (a thread
entry's ``meta``): it holds no email address, only the keyed hash of a proposed address and a
redacted form of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class MessageKind(StrEnum):
    """What the detect stage found a message to be."""

    REPLY = "reply"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    READ_RECEIPT = "read_receipt"
    FEEDBACK_REPORT = "feedback_report"


#: Machine-made reports about a message we sent: routed by what they say about that message,
#: never by the words in them (they quote our reminder, reference included).
REPORT_KINDS = frozenset(
    {MessageKind.BOUNCE, MessageKind.READ_RECEIPT, MessageKind.FEEDBACK_REPORT}
)


class Outcome(StrEnum):
    """What one rule found.

    ``matched`` and ``rejected`` decide (the case, or triage because a signed address was
    forged); ``no_match`` and ``ambiguous`` pass the message on to the next rule; ``skipped``
    means the rule did not look (it does not apply, or an earlier rule decided).
    """

    MATCHED = "matched"
    NO_MATCH = "no_match"
    AMBIGUOUS = "ambiguous"
    REJECTED = "rejected"
    SKIPPED = "skipped"

    @property
    def decides(self) -> bool:
        return self in (Outcome.MATCHED, Outcome.REJECTED)


class TriageReason(StrEnum):
    FORGED = "forged"  # a signed reply or bounce address failed its check
    AMBIGUOUS = "ambiguous"  # the evidence names several cases
    UNVERIFIED_REFERENCE = "unverified_reference"  # a reference, but not from that debtor
    UNMATCHED = "unmatched"  # nothing names a case


@dataclass(frozen=True)
class RoutingInput:
    """One inbound message as routing sees it; addresses as plain ``local@domain`` strings."""

    message_id: str | None
    from_address: str
    kind: MessageKind = MessageKind.REPLY
    from_name: str = ""
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    delivered_to: tuple[str, ...] = ()
    x_original_to: tuple[str, ...] = ()
    in_reply_to: str | None = None
    #: the ``References`` Message-IDs, oldest first as in the header
    references: tuple[str, ...] = ()
    subject: str = ""
    #: what the sender wrote (quotes and signature removed), and the whole text part
    reply_text: str = ""
    full_text: str = ""
    #: the values of every ``Authentication-Results`` header, top (newest) first
    authentication_results: tuple[str, ...] = ()
    #: for reports (bounce, MDN, ARF): the Message-ID of our message they are about
    original_message_id: str | None = None
    #: the envelope recipients the mail was delivered to (a bounce: our VERP address)
    envelope_to: tuple[str, ...] = ()
    received_at: datetime | None = None

    def recipients(self) -> tuple[str, ...]:
        """Recipient addresses in order of trust: the ones the receiving server set first."""
        return (*self.delivered_to, *self.x_original_to, *self.to, *self.cc)


@dataclass(frozen=True)
class RuleOutcome:
    """What one rule found, and why; ``candidates`` are cases it saw but did not pick."""

    rule: str
    outcome: Outcome
    case_id: int | None = None
    why: str = ""
    candidates: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "outcome": self.outcome.value,
            "case_id": self.case_id,
            "why": self.why,
            "candidates": list(self.candidates),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RuleOutcome:
        return cls(
            rule=str(data["rule"]),
            outcome=Outcome(data["outcome"]),
            case_id=_opt_int(data.get("case_id")),
            why=str(data.get("why", "")),
            candidates=tuple(int(c) for c in data.get("candidates", ())),
        )


@dataclass(frozen=True)
class AddressProposal:
    """A sender address the case's debtor does not have yet, for a collector's one-click add.

    Holds no address: the web reads it from the stored message's ``From`` and checks it
    against ``address_hash`` before adding it.
    """

    case_id: int
    debtor_id: int
    address_hash: str
    redacted: str
    #: True when a trusted Authentication-Results header showed DKIM or DMARC pass for it
    authenticated: bool
    evidence: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "debtor_id": self.debtor_id,
            "address_hash": self.address_hash,
            "redacted": self.redacted,
            "authenticated": self.authenticated,
            "evidence": list(self.evidence),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AddressProposal:
        return cls(
            case_id=int(data["case_id"]),
            debtor_id=int(data["debtor_id"]),
            address_hash=str(data["address_hash"]),
            redacted=str(data["redacted"]),
            authenticated=bool(data["authenticated"]),
            evidence=tuple(str(e) for e in data.get("evidence", ())),
        )


@dataclass(frozen=True)
class RouteDecision:
    """Where a message goes, which rule decided, and whether its sender may change the case.

    A message routed to a case with ``sender_verified`` False is kept on the case's thread but
    never changes the case by itself.
    """

    case_id: int | None
    rule: str | None
    outcomes: tuple[RuleOutcome, ...]
    sender_verified: bool
    trust_reasons: tuple[str, ...] = ()
    triage_reason: TriageReason | None = None
    #: the outbox row a bounce (or other report) is about, when the VERP address named it
    outbox_id: int | None = None
    proposed_address: AddressProposal | None = None
    candidate_case_ids: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        if (self.case_id is None) != (self.triage_reason is not None):
            raise ValueError("a decision names a case or a triage reason, exactly one of them")
        if self.case_id is None and self.sender_verified:
            raise ValueError("a message in triage has no verified sender")

    @property
    def to_triage(self) -> bool:
        return self.case_id is None

    def to_json(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "rule": self.rule,
            "to_triage": self.to_triage,
            "triage_reason": self.triage_reason.value if self.triage_reason else None,
            "sender_verified": self.sender_verified,
            "trust_reasons": list(self.trust_reasons),
            "outbox_id": self.outbox_id,
            "candidate_case_ids": list(self.candidate_case_ids),
            "proposed_address": (
                self.proposed_address.to_json() if self.proposed_address else None
            ),
            "outcomes": [outcome.to_json() for outcome in self.outcomes],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RouteDecision:
        proposal = data.get("proposed_address")
        reason = data.get("triage_reason")
        return cls(
            case_id=_opt_int(data.get("case_id")),
            rule=None if data.get("rule") is None else str(data["rule"]),
            outcomes=tuple(RuleOutcome.from_json(o) for o in data.get("outcomes", ())),
            sender_verified=bool(data["sender_verified"]),
            trust_reasons=tuple(str(r) for r in data.get("trust_reasons", ())),
            triage_reason=None if reason is None else TriageReason(reason),
            outbox_id=_opt_int(data.get("outbox_id")),
            proposed_address=None if proposal is None else AddressProposal.from_json(proposal),
            candidate_case_ids=tuple(int(c) for c in data.get("candidate_case_ids", ())),
        )


def redact_address(address: str) -> str:
    """``j***@example.org``: enough for a person to recognise, too little to write to."""
    local, sep, domain = address.strip().rpartition("@")
    if not sep:
        return "***"
    return f"{local[:1]}***@{domain.lower()}"


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)
