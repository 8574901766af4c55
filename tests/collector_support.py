"""Helpers for the collector pages' tests: a debtor's reply on a thread as the inbound step
records it (route decision in ``meta``, a Classification), with the automation's decision."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from hub.domain.dunning import policy_from_settings
from hub.services.automation import apply_intent
from hub.services.thread import append_entry, lock_case
from hub.storage.db import Database
from hub.storage.models import Classification, InboundMessage, utcnow
from hub.storage.models_cases import CollectorTask

ROUTE: dict[str, Any] = {
    "rule": "reply_token",
    "sender_verified": False,
    "trust_reasons": ["the From address is not one of the debtor's"],
    "outcomes": [
        {"rule": "reply_token", "outcome": "matched", "case_id": None, "why": "token valid"},
        {"rule": "references", "outcome": "skipped", "case_id": None, "why": "decided"},
    ],
}


async def debtor_reply(
    database: Database,
    case_id: int,
    *,
    text: str,
    intent: str,
    fields: dict[str, Any],
    confidence: float,
    is_suggestion: bool,
    sender_verified: bool,
    message_id: str = "<reply-1@debtor.example>",
    now: datetime | None = None,
    route: dict[str, Any] | None = None,
    raw: bytes | None = None,
) -> tuple[int, int | None]:
    """The reply's entry id and the task the automation opened (None when it opened none)."""
    now = now or utcnow()
    async with database.transaction() as session:
        await lock_case(session, case_id)
        entry = await append_entry(
            session,
            case_id,
            kind="inbound",
            actor="debtor" if sender_verified else "sender:unverified",
            now=now,
            body=text,
            meta={"route": {**ROUTE, **(route or {}), "sender_verified": sender_verified}},
        )
        entry.message_id = message_id
        entry.subject = "Re: your invoice"
        entry.raw_message = raw
        session.add(
            Classification(
                thread_entry_id=entry.id,
                intent=intent,
                subtype=fields.get("subtype"),
                confidence=confidence,
                language="en",
                fields=fields,
                model_version="test-1",
                is_suggestion=is_suggestion,
                created_at=now,
            )
        )
        await session.flush()
        decisions = await apply_intent(
            session,
            case_id,
            intent=intent,
            fields=fields,
            confidence=confidence,
            is_suggestion=is_suggestion,
            sender_verified=sender_verified,
            source_entry_id=entry.id,
            now=now,
            policy=policy_from_settings(None),
        )
        return entry.id, decisions[0].task_id


async def unmatched_message(database: Database, uid: int, raw: bytes) -> int:
    """An inbound message routing sent to triage (nothing names a case)."""
    async with database.transaction() as session:
        row = InboundMessage(
            account="hub@test",
            mailbox="INBOX",
            uidvalidity=1,
            uid=uid,
            message_id=f"<unmatched-{uid}@stranger.example>",
            content_hash=f"{uid:064d}",
            size=len(raw),
            raw=raw,
            state="triage",
            route={
                "case_id": None,
                "to_triage": True,
                "triage_reason": "unmatched",
                "rule": None,
                "sender_verified": False,
                "candidate_case_ids": [],
                "outcomes": [
                    {"rule": "reply_token", "outcome": "no_match", "why": "no token"},
                    {"rule": "reference_in_text", "outcome": "no_match", "why": "none found"},
                ],
            },
        )
        session.add(row)
        await session.flush()
        return row.id


async def open_tasks(database: Database, case_id: int) -> list[tuple[int, str]]:
    async with database.sessions() as session:
        rows = await session.execute(
            select(CollectorTask.id, CollectorTask.kind).where(
                CollectorTask.case_id == case_id, CollectorTask.status == "open"
            )
        )
        return [(int(i), str(k)) for i, k in rows.all()]
