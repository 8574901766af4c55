"""What the access export (:mod:`hub.services.gdpr_export`) says about each stored row.

Pure functions from ORM rows to JSON-ready dicts: the person with addresses and key facts, a
case with its plans, payments and tasks, a classification, a delivery, and what the inbound
stages understood. No queries here, and nothing is left out of a row that names the person.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hub.storage.models import (
    Case,
    Classification,
    Debtor,
    DebtorKey,
    InboundMessage,
    OutboxMessage,
)
from hub.storage.models_cases import CollectorTask, InstallmentPlan, Payment


def person_record(debtor: Debtor, code: str, keys: Sequence[DebtorKey]) -> dict[str, Any]:
    """``person.json``: the debtor's personal data, addresses and key facts."""
    return {
        "debtor_id": debtor.id,
        "creditor": code,
        "creditor_debtor_reference": debtor.external_ref,
        "name": debtor.name,
        "street": debtor.street,
        "postal_code": debtor.postal_code,
        "city": debtor.city,
        "country": debtor.country,
        "phone": debtor.phone,
        "language": debtor.language,
        "timezone": debtor.timezone,
        "created_at": debtor.created_at,
        "updated_at": debtor.updated_at,
        "erased_at": debtor.erased_at,
        "email_addresses": [
            {
                "address": e.address,
                "primary": e.is_primary,
                "verified": e.verified,
                "status": e.status,
                "added_at": e.created_at,
            }
            for e in debtor.emails
        ],
        "keys": [
            {
                "kind": k.kind,
                "fingerprint": k.fingerprint,
                "source": k.source,
                "can_encrypt": k.can_encrypt,
                "created_at": k.key_created_at,
                "expires_at": k.expires_at,
                "revoked": k.revoked,
                "added_at": k.added_at,
            }
            for k in keys
        ],
    }


def case_record(
    case: Case,
    plans: Sequence[InstallmentPlan],
    payments: Sequence[Payment],
    tasks: Sequence[CollectorTask],
) -> dict[str, Any]:
    """One case of ``cases.json`` with its plans, payments and tasks (only this case's are
    taken from the sequences given)."""
    return {
        "reference": case.reference,
        "description": case.description,
        "claim_amount": case.claim_amount,
        "currency": case.currency,
        "fees": case.fees,
        "paid_amount": case.paid_amount,
        "due_date": case.due_date,
        "state": case.state,
        "dunning_level": case.dunning_level,
        "paused_until": case.paused_until,
        "legal_hold": case.legal_hold,
        "created_at": case.created_at,
        "closed_at": case.closed_at,
        "installment_plans": [
            {
                "status": p.status,
                "count": p.count,
                "amount_per_installment": p.amount_per_installment,
                "frequency": p.frequency,
                "start_date": p.start_date,
                "proposed_by": p.proposed_by,
                "proposed_at": p.proposed_at,
                "decided_by": p.decided_by,
                "decided_at": p.decided_at,
                "facts": p.meta,
                "installments": [
                    {
                        "seq": i.seq,
                        "due_date": i.due_date,
                        "amount": i.amount,
                        "paid_amount": i.paid_amount,
                        "status": i.status,
                    }
                    for i in p.installments
                ],
            }
            for p in plans
            if p.case_id == case.id
        ],
        "payments": [
            {
                "amount": p.amount,
                "currency": p.currency,
                "booked_at": p.booked_at,
                "source": p.source,
                "bank_reference": p.external_id,
                "remittance_text": p.reference_text,
                "facts": p.meta,
            }
            for p in payments
            if p.case_id == case.id
        ],
        "tasks": [
            {
                "kind": t.kind,
                "status": t.status,
                "reason": t.reason,
                "created_at": t.created_at,
                "done_at": t.done_at,
            }
            for t in tasks
            if t.case_id == case.id
        ],
    }


def classification_record(c: Classification) -> dict[str, Any]:
    """One classification of a thread entry, with a collector's correction."""
    return {
        "intent": c.intent,
        "subtype": c.subtype,
        "confidence": c.confidence,
        "language": c.language,
        "fields": c.fields,
        "model_version": c.model_version,
        "suggestion": c.is_suggestion,
        "corrected_intent": c.corrected_intent,
        "at": c.created_at,
    }


def delivery_record(out: OutboxMessage) -> dict[str, Any]:
    """One outbox row of a thread entry: to whom, and when it was queued and sent."""
    return {
        "state": out.state,
        "recipients": out.recipients,
        "message_id": out.message_id,
        "queued_at": out.created_at,
        "sent_at": out.sent_at,
    }


def understanding(row: InboundMessage) -> dict[str, Any]:
    """What the inbound stages found (``analysis``, and the sealed ``understood`` JSON)."""
    found: dict[str, Any] = {}
    analysis = getattr(row, "analysis", None)
    if analysis is not None:
        found["analysis"] = analysis
    understood = getattr(row, "understood", None)
    if understood:
        try:
            found["understood"] = json.loads(understood)
        except ValueError:
            found["understood"] = bytes(understood).decode("utf-8", "replace")
    return found
