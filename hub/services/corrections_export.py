"""Collectors' labels of debtors' replies, as training records in the LABELS.md format.

Every :class:`~hub.storage.models.Classification` a collector confirmed or corrected in the
triage queue (``corrected_by`` set) becomes one JSON line: ``id``, ``lang``, ``received``,
``claim`` {amount, currency, reference}, ``text`` (what the debtor wrote: the reply text the
inbound stages extracted, else the entry's body), ``intent``, ``fields`` and ``also``, plus
``corrected`` (the collector changed the intent) and ``model_intent`` (what the model said).
A corrected intent's fields were never extracted: they are given as unknown (null), except an
``other`` reply's ``subtype``, which the collector chose. The file holds debtors' words:
the export is audited, and the file is for the training machine only.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import select

from hub.security import audit
from hub.storage.db import Database
from hub.storage.models import Case, Classification, InboundMessage, ThreadEntry

BATCH = 500
#: the fields of each intent in LABELS.md
INTENT_FIELDS: dict[str, tuple[str, ...]] = {
    "dispute": ("reason",),
    "payment_promise": ("amount", "currency", "date"),
    "installment_request": ("installments", "amount_per_installment", "frequency", "start_date"),
    "other": ("subtype",),
}


def _number(value: Any) -> Any:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return int(number) if number.is_integer() else number


def record_fields(classification: Classification) -> tuple[str, dict[str, Any], bool]:
    """The label (intent), its fields as LABELS.md names them, and whether it was corrected."""
    model = dict(classification.fields or {})
    corrected = classification.corrected_intent is not None and (
        classification.corrected_intent != classification.intent
        or model.get("corrected_subtype") not in (None, classification.subtype)
    )
    intent = classification.corrected_intent or classification.intent
    fields: dict[str, Any] = {}
    for name in INTENT_FIELDS.get(intent, ()):
        fields[name] = None if corrected else model.get(name)
    if intent == "other":
        fields["subtype"] = model.get("corrected_subtype") or (
            None if corrected else (model.get("subtype") or classification.subtype)
        )
    return intent, fields, corrected


async def _reply_text(database: Database, entry: ThreadEntry) -> str:
    async with database.sessions() as session:
        sealed = await session.scalar(
            select(InboundMessage.understood).where(InboundMessage.thread_entry_id == entry.id)
        )
    if sealed:
        personal = json.loads(sealed)
        text = personal.get("reply_text") or personal.get("text")
        if isinstance(text, str) and text.strip():
            return text
    return entry.body or ""


async def correction_records(database: Database, actor: str) -> AsyncIterator[dict[str, Any]]:
    """Every labelled classification as one record, oldest first; audited at the end."""
    last_id = 0
    count = 0
    while True:
        async with database.sessions() as session:
            rows = (
                await session.execute(
                    select(Classification, ThreadEntry, Case)
                    .join(ThreadEntry, ThreadEntry.id == Classification.thread_entry_id)
                    .join(Case, Case.id == ThreadEntry.case_id)
                    .where(Classification.corrected_by.is_not(None), Classification.id > last_id)
                    .order_by(Classification.id)
                    .limit(BATCH)
                )
            ).all()
        for classification, entry, case in rows:
            intent, fields, corrected = record_fields(classification)
            count += 1
            yield {
                "id": f"{classification.language}-hub-{classification.id}",
                "lang": classification.language,
                "received": entry.occurred_at.isoformat(),
                "claim": {
                    "amount": _number(case.claim_amount),
                    "currency": case.currency,
                    "reference": case.reference,
                },
                "text": await _reply_text(database, entry),
                "intent": intent,
                "fields": fields,
                "also": [],
                "corrected": corrected,
                "model_intent": classification.intent,
                "model_version": classification.model_version,
            }
        if len(rows) < BATCH:
            break
        last_id = rows[-1][0].id
    async with database.transaction() as session:
        await audit.record(
            session,
            actor,
            "nlp.export_corrections",
            "classification",
            None,
            None,
            {"records": count},
        )
