"""What a collector decides in the triage queue, each one transaction with its audit entry.

* :func:`label_task`: confirm the classification of the reply behind a ``triage`` task, or
  correct it. Either way the intent is applied by :func:`hub.services.automation.apply_intent`
  as the collector's decision (not a suggestion; the collector vouches for the sender), which
  records the decision entry on the thread under the collector's name. A correction stores
  ``corrected_intent`` and ``corrected_by`` on the :class:`~hub.storage.models.Classification`
  (a corrected ``other`` subtype goes to ``fields["corrected_subtype"]``): what training learns
  from (``hub nlp export-corrections``). A confirmation stores ``corrected_by`` alone.
* :func:`close_task`: a task handled on the case page is marked done (an internal entry).
* :func:`attach_message`: an unmatched message goes onto a case found by its reference, as an
  ``inbound`` entry from an unverified sender; :func:`discard_message` drops it from the queue
  (its raw bytes stay stored).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.domain.automation import Decision
from hub.domain.dunning import policy_from_settings
from hub.errors import NotFoundError, UserError
from hub.inbound.understand import from_json
from hub.security import audit
from hub.security.roles import Principal
from hub.services.automation import apply_intent
from hub.services.tasks import OPEN, close_tasks
from hub.services.thread import append_entry, lock_case
from hub.services.triage import TRIAGE_STATE, label_name, parse_label
from hub.storage.db import Database
from hub.storage.models import (
    Case,
    Classification,
    Creditor,
    InboundMessage,
    ThreadEntry,
    utcnow,
)
from hub.storage.models_cases import CollectorTask

log = logging.getLogger(__name__)

TRIAGE_KIND = "triage"
TASK_DONE_KIND = "task_done"
ROUTED, DISCARDED = "routed", "discarded"
#: the thread entry kind of an attached message, by what the detect stage found it to be
ENTRY_KINDS = {"reply": "inbound"}


@dataclass(frozen=True)
class LabelOutcome:
    case_id: int
    corrected: bool
    decisions: list[Decision]


async def _open_task(session: AsyncSession, task_id: int) -> CollectorTask:
    task = await session.scalar(
        select(CollectorTask)
        .where(CollectorTask.id == task_id)
        .execution_options(populate_existing=True)
    )
    if task is None:
        raise NotFoundError("no such task")
    if task.status != OPEN:
        raise UserError("this task was handled already")
    return task


async def _source_of(session: AsyncSession, task: CollectorTask) -> int | None:
    """The debtor's entry behind the decision that opened the task."""
    if task.thread_entry_id is None:
        return None
    meta = await session.scalar(
        select(ThreadEntry.meta).where(ThreadEntry.id == task.thread_entry_id)
    )
    source = (meta or {}).get("source_entry_id")
    return source if isinstance(source, int) else None


def _fields_for(
    classification: Classification | None, intent: str, subtype: str | None, corrected: bool
) -> dict[str, Any]:
    if classification is not None and not corrected:
        fields = dict(classification.fields or {})
        fields.pop("spans", None)
    else:
        fields = {}  # a corrected intent's fields were never extracted
    if subtype is not None:
        fields["subtype"] = subtype
    return fields


async def label_task(
    database: Database,
    principal: Principal,
    task_id: int,
    label: str,
    remote_addr: str | None = None,
    now: datetime | None = None,
) -> LabelOutcome:
    """Confirm or correct the intent of the reply behind an open ``triage`` task."""
    try:
        intent, subtype = parse_label(label)
    except ValueError:
        raise UserError(f"unknown intent {label!r}") from None
    now = now or utcnow()
    async with database.transaction() as session:
        case_id = await session.scalar(
            select(CollectorTask.case_id).where(CollectorTask.id == task_id)
        )
        if case_id is None:
            raise NotFoundError("no such task")
        await lock_case(session, case_id)
        task = await _open_task(session, task_id)
        if task.kind != TRIAGE_KIND:
            raise UserError("only a triage task takes an intent; handle this one on the case")
        source_id = await _source_of(session, task)
        classification = None
        if source_id is not None:
            classification = await session.scalar(
                select(Classification)
                .where(Classification.thread_entry_id == source_id)
                .order_by(Classification.id.desc())
                .limit(1)
            )
        before = (
            label_name(classification.intent, classification.subtype) if classification else None
        )
        corrected = before != label_name(intent, subtype)
        fields = _fields_for(classification, intent, subtype, corrected)
        if classification is not None:
            classification.is_suggestion = False
            classification.corrected_by = principal.user_id
            if corrected:
                classification.corrected_intent = intent
                if subtype is not None:
                    classification.fields = {
                        **(classification.fields or {}),
                        "corrected_subtype": subtype,
                    }
        await close_tasks(session, case_id, done_by=principal.actor, now=now, ids=[task.id])
        settings = await session.scalar(
            select(Creditor.settings)
            .join(Case, Case.creditor_id == Creditor.id)
            .where(Case.id == case_id)
        )
        decisions = await apply_intent(
            session,
            case_id,
            intent=intent,
            fields=fields,
            confidence=1.0,
            is_suggestion=False,
            sender_verified=True,  # a person read it and vouches for it
            source_entry_id=source_id,
            actor=principal.actor,
            now=now,
            policy=policy_from_settings((settings or {}).get("dunning")),
        )
        await audit.record(
            session,
            principal.actor,
            "triage.correct" if corrected else "triage.confirm",
            "case",
            case_id,
            remote_addr,
            {
                "task_id": task.id,
                "classification_id": classification.id if classification else None,
                "from": before,
                "to": label_name(intent, subtype),
                "decision_entry_ids": [d.entry_id for d in decisions],
            },
        )
    log.info(
        "triage: task %s %s by %s",
        task_id,
        "corrected" if corrected else "confirmed",
        principal.actor,
    )
    return LabelOutcome(case_id, corrected, decisions)


async def close_task(
    database: Database,
    principal: Principal,
    task_id: int,
    remote_addr: str | None = None,
    now: datetime | None = None,
) -> int:
    """Mark an open task done (an internal entry on the case says who); the case id."""
    now = now or utcnow()
    async with database.transaction() as session:
        case_id = await session.scalar(
            select(CollectorTask.case_id).where(CollectorTask.id == task_id)
        )
        if case_id is None:
            raise NotFoundError("no such task")
        await lock_case(session, case_id)
        task = await _open_task(session, task_id)
        await close_tasks(session, case_id, done_by=principal.actor, now=now, ids=[task.id])
        entry = await append_entry(
            session,
            case_id,
            kind=TASK_DONE_KIND,
            actor=principal.actor,
            now=now,
            internal=True,
            meta={"task_id": task.id, "task_kind": task.kind, "why": "a collector handled it"},
        )
        await audit.record(
            session,
            principal.actor,
            "task.done",
            "case",
            case_id,
            remote_addr,
            {"task_id": task.id, "thread_entry_id": entry.id},
        )
    return case_id


async def _triage_message(session: AsyncSession, inbound_id: int) -> InboundMessage:
    row = await session.scalar(
        select(InboundMessage)
        .where(InboundMessage.id == inbound_id)
        .execution_options(populate_existing=True)
    )
    if row is None:
        raise NotFoundError("no such message")
    if row.state != TRIAGE_STATE:
        raise UserError("this message is no longer in triage")
    return row


async def find_case(session: AsyncSession, reference: str, creditor_code: str = "") -> int:
    """The case with this reference (and creditor, when several creditors use it)."""
    stmt = (
        select(Case.id, Creditor.code)
        .join(Creditor, Creditor.id == Case.creditor_id)
        .where(Case.reference == reference.strip())
    )
    if creditor_code.strip():
        stmt = stmt.where(Creditor.code == creditor_code.strip().upper())
    rows = (await session.execute(stmt)).all()
    if not rows:
        raise UserError(f"no case with the reference {reference.strip()!r}")
    if len(rows) > 1:
        codes = ", ".join(sorted(code for _, code in rows))
        raise UserError(f"several creditors have this reference ({codes}): choose the creditor")
    return int(rows[0][0])


async def attach_message(
    database: Database,
    principal: Principal,
    inbound_id: int,
    reference: str,
    creditor_code: str = "",
    remote_addr: str | None = None,
    now: datetime | None = None,
) -> int:
    """Put an unmatched message on the case ``reference``; the case id."""
    now = now or utcnow()
    if not reference.strip():
        raise UserError("give the case reference")
    async with database.transaction() as session:
        case_id = await find_case(session, reference, creditor_code)
        await lock_case(session, case_id)
        row = await _triage_message(session, inbound_id)
        route = dict(row.route or {})
        subject: str | None = None
        body: str | None = None
        message_id = row.message_id
        kind = "inbound"
        if row.analysis is not None and row.understood is not None:
            understood = from_json(row.id, row.analysis, json.loads(row.understood))
            subject, body = understood.subject or None, understood.text
            kind = ENTRY_KINDS.get(understood.kind.value, understood.kind.value)
        manual = {"attached_by": principal.actor, "attached_at": now.isoformat()}
        entry = await append_entry(
            session,
            case_id,
            kind=kind,
            actor="sender:unverified",
            now=now,
            body=body,
            meta={
                "route": {**route, **manual},
                "sender_verified": False,
                "inbound_id": row.id,
                "rule": "attached_by_collector",
                "why": "routing found no case; a collector attached it by the reference",
            },
        )
        entry.subject = subject
        entry.message_id = message_id
        entry.raw_message = row.raw
        row.state = ROUTED
        row.thread_entry_id = entry.id
        row.route = {**route, **manual, "case_id": case_id, "to_triage": False}
        await session.flush()
        await audit.record(
            session,
            principal.actor,
            "triage.attach",
            "case",
            case_id,
            remote_addr,
            {"inbound_id": row.id, "thread_entry_id": entry.id},
        )
    return case_id


async def discard_message(
    database: Database,
    principal: Principal,
    inbound_id: int,
    remote_addr: str | None = None,
    now: datetime | None = None,
) -> None:
    """Take an unmatched message out of the queue (nothing is deleted)."""
    now = now or utcnow()
    async with database.transaction() as session:
        row = await _triage_message(session, inbound_id)
        row.state = DISCARDED
        row.route = {
            **(row.route or {}),
            "discarded_by": principal.actor,
            "discarded_at": now.isoformat(),
        }
        await audit.record(
            session,
            principal.actor,
            "triage.discard",
            "inbound_message",
            row.id,
            remote_addr,
            {},
        )
