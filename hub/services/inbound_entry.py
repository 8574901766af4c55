"""The non-personal facts of the thread entries the record step writes (their ``meta``).

``meta`` is stored in clear, so it holds verdicts, rule names and hashes, never an address,
a subject or a text: :func:`entry_meta` for the message itself (route, crypto and signature
verdicts, detection and reply-text rules, trust, a proposed address by its hash) and
:func:`classification_meta` for the classifier's verdict.
"""

from __future__ import annotations

from typing import Any

from hub.domain.routing import RouteDecision
from hub.domain.understood import Understood
from hub.nlp.model import Classification
from hub.storage.models import InboundMessage


def _crypto_meta(understood: Understood) -> dict[str, Any]:
    c = understood.crypto
    return {
        "encrypted": c.encrypted,
        "method": c.method,
        "decrypted": c.decrypted,
        "decryptions": list(c.decryptions),
        "integrity_protected": c.integrity_protected,
        "signed": c.signed,
        "signature_valid": c.signature_valid,
        "signer_fingerprint": c.signer_fingerprint,
        "signer_matches_from": c.signer_matches_from,
        "trusted": c.trusted,
    }


def entry_meta(
    row: InboundMessage, understood: Understood, decision: RouteDecision
) -> dict[str, Any]:
    """The non-personal facts of an inbound entry (the decision JSON holds no address)."""
    analysis = understood.analysis
    detection = analysis.get("detection") or {}
    reply_text = analysis.get("reply_text") or {}
    proposal = decision.proposed_address
    return {
        "source": "mail",
        "inbound_id": row.id,
        "message_kind": understood.kind.value,
        "detected_kind": understood.detected_kind,
        "route_rule": decision.rule,
        "route": {
            "rule": decision.rule,
            "outcomes": [{"rule": o.rule, "outcome": o.outcome.value} for o in decision.outcomes],
        },
        "sender_verified": decision.sender_verified,
        "trust_reasons": list(decision.trust_reasons),
        "crypto": _crypto_meta(understood),
        "signature_verdict": understood.crypto.signature_verdict,
        "detection": {
            "decided_by": detection.get("decided_by"),
            "rules": [
                {"rule": r.get("rule"), "outcome": r.get("outcome")}
                for r in detection.get("rules") or ()
            ],
        },
        "reply_text_rules": list(reply_text.get("rules") or ()),
        "attachments": understood.attachment_count,
        "proposed_address": None
        if proposal is None
        else {
            "address_hash": proposal.address_hash,
            "redacted": proposal.redacted,
            "authenticated": proposal.authenticated,
        },
    }


def classification_meta(result: Classification, source_entry_id: int) -> dict[str, Any]:
    return {
        "source_entry_id": source_entry_id,
        "intent": result.intent,
        "subtype": result.fields.get("subtype"),
        "confidence": round(result.confidence, 4),
        "is_suggestion": result.is_suggestion,
        "language": result.language,
        "also": list(result.also),
        "scores": {k: round(v, 4) for k, v in result.scores.items()},
        "model_version": result.model_version,
        "fields": sorted(k for k, v in result.fields.items() if v is not None),
    }
