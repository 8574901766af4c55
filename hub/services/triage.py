"""The collector's triage queue: what waits for a person, oldest first, and why it waits.

Two sources, each read one page at a time through an index:

* open collector tasks (``collector_tasks`` by ``status``): every low-confidence or unverified
  reply gives one (:func:`hub.domain.automation.react` sends both to ``triage``), as do disputes,
  hardship, plans to approve, … Each item carries the decision entry that opened it (rule, why,
  confidence), the debtor's entry behind that decision (the route decision's outcomes and trust
  reasons), and the :class:`~hub.storage.models.Classification` of that entry;
* inbound messages routing could not place (``inbound_messages.state = 'triage'``), with the
  route decision (every rule's outcome, the triage reason, candidate cases) and what the
  message says (subject, sender redacted, reply text), decrypted for this page only.

Filters: intent (of the decision), language (of the debtor, or of the classification),
creditor and age. The read is audited (the page shows personal data).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from hub.domain.automation import Intent, OtherSubtype
from hub.domain.routing import redact_address
from hub.errors import NotFoundError
from hub.inbound.understand import from_json
from hub.security import audit
from hub.security.roles import Principal
from hub.storage.db import Database
from hub.storage.models import (
    Case,
    Classification,
    Creditor,
    Debtor,
    InboundMessage,
    ThreadEntry,
    utcnow,
)
from hub.storage.models_cases import CollectorTask

PAGE_SIZE = 25
TRIAGE_STATE = "triage"
OPEN = "open"
EXCERPT = 600

#: the labels a collector can give, as (intent, subtype): the one-key buttons
LABELS: tuple[tuple[str, str | None], ...] = (
    (Intent.DISPUTE.value, None),
    (Intent.PAYMENT_PROMISE.value, None),
    (Intent.INSTALLMENT_REQUEST.value, None),
    *((Intent.OTHER.value, s.value) for s in OtherSubtype),
)


def label_name(intent: str, subtype: str | None) -> str:
    return intent if subtype is None else f"{intent}:{subtype}"


def parse_label(label: str) -> tuple[str, str | None]:
    """``dispute`` or ``other:question`` → (intent, subtype); ValueError when unknown."""
    intent, _, subtype = label.partition(":")
    found = (intent, subtype or None)
    if found not in LABELS:
        raise ValueError(f"unknown label {label!r}")
    return found


@dataclass(frozen=True)
class Filters:
    intent: str = ""
    language: str = ""
    creditor: str = ""
    #: only items at least this many days old
    min_age_days: int = 0

    @property
    def case_only(self) -> bool:
        """A filter that unmatched messages (no case, no classification) cannot pass."""
        return bool(self.intent or self.language or self.creditor)


@dataclass(frozen=True)
class ClassificationView:
    id: int
    intent: str
    subtype: str | None
    confidence: float
    language: str
    is_suggestion: bool
    corrected_intent: str | None
    corrected_by: int | None
    model_version: str

    @property
    def label(self) -> str:
        return label_name(self.intent, self.subtype)

    @property
    def decided(self) -> bool:
        return self.corrected_by is not None


@dataclass(frozen=True)
class TaskItem:
    task_id: int
    kind: str
    reason: str
    created_at: datetime
    case_id: int
    reference: str
    creditor_code: str
    case_state: str
    language: str
    #: the decision that opened the task: rule, why, intent, confidence, sender_verified, …
    decision: dict[str, Any]
    #: the debtor's entry behind it (the route decision: rule, outcomes, trust reasons)
    source_kind: str | None
    source_subject: str | None
    source_excerpt: str | None
    route: dict[str, Any]
    classification: ClassificationView | None


@dataclass(frozen=True)
class UnmatchedItem:
    inbound_id: int
    received_at: datetime
    sender: str
    subject: str
    excerpt: str
    kind: str
    route: dict[str, Any]


@dataclass(frozen=True)
class TriagePage:
    tasks: list[TaskItem]
    unmatched: list[UnmatchedItem]
    page: int
    more_tasks: bool
    more_unmatched: bool
    creditors: list[str] = field(default_factory=list)


def route_of(meta: dict[str, Any]) -> dict[str, Any]:
    """The route decision as the inbound entry recorded it (nested or flat)."""
    route = meta.get("route")
    if isinstance(route, dict):
        return route
    keys = ("rule", "outcomes", "trust_reasons", "sender_verified", "proposed_address")
    return {k: meta[k] for k in keys if k in meta}


def _excerpt(text: str | None) -> str | None:
    if text is None:
        return None
    return text if len(text) <= EXCERPT else text[:EXCERPT] + " …"


def _task_query(filters: Filters, now: datetime) -> Select[CollectorTask, str, str, str, str]:
    stmt = (
        select(CollectorTask, Case.reference, Case.state, Creditor.code, Debtor.language)
        .join(Case, Case.id == CollectorTask.case_id)
        .join(Creditor, Creditor.id == Case.creditor_id)
        .join(Debtor, Debtor.id == Case.debtor_id)
        .where(CollectorTask.status == OPEN)
    )
    if filters.creditor:
        stmt = stmt.where(Creditor.code == filters.creditor)
    if filters.language:
        stmt = stmt.where(Debtor.language == filters.language)
    if filters.min_age_days:
        stmt = stmt.where(CollectorTask.created_at <= now - timedelta(days=filters.min_age_days))
    if filters.intent:
        decision = select(ThreadEntry.id).where(
            ThreadEntry.id == CollectorTask.thread_entry_id,
            ThreadEntry.meta["intent"].as_string() == filters.intent,
        )
        stmt = stmt.where(decision.exists())
    return stmt.order_by(CollectorTask.created_at, CollectorTask.id)


async def _classifications(
    session: AsyncSession, entry_ids: list[int]
) -> dict[int, ClassificationView]:
    if not entry_ids:
        return {}
    rows = await session.scalars(
        select(Classification)
        .where(Classification.thread_entry_id.in_(entry_ids))
        .order_by(Classification.id)
    )
    found: dict[int, ClassificationView] = {}
    for c in rows:
        found[c.thread_entry_id] = ClassificationView(  # the newest one wins
            c.id,
            c.intent,
            c.subtype,
            c.confidence,
            c.language,
            c.is_suggestion,
            c.corrected_intent,
            c.corrected_by,
            c.model_version,
        )
    return found


async def _tasks(
    session: AsyncSession, filters: Filters, page: int, now: datetime
) -> tuple[list[TaskItem], bool]:
    rows = (
        await session.execute(
            _task_query(filters, now).limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE)
        )
    ).all()
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    decision_ids = [t.thread_entry_id for t, *_ in rows if t.thread_entry_id is not None]
    decisions: dict[int, ThreadEntry] = {}
    if decision_ids:
        for entry in await session.scalars(
            select(ThreadEntry)
            .where(ThreadEntry.id.in_(decision_ids))
            .options(defer(ThreadEntry.raw_message), defer(ThreadEntry.body))
        ):
            decisions[entry.id] = entry
    source_ids = sorted(
        {
            int(e.meta["source_entry_id"])
            for e in decisions.values()
            if isinstance((e.meta or {}).get("source_entry_id"), int)
        }
    )
    sources: dict[int, ThreadEntry] = {}
    if source_ids:
        for entry in await session.scalars(
            select(ThreadEntry)
            .where(ThreadEntry.id.in_(source_ids))
            .options(defer(ThreadEntry.raw_message))
        ):
            sources[entry.id] = entry
    classified = await _classifications(session, source_ids)
    items = []
    for task, reference, state, code, language in rows:
        decision = decisions.get(task.thread_entry_id or -1)
        meta = dict(decision.meta or {}) if decision else {}
        source_id = meta.get("source_entry_id")
        source = sources.get(source_id) if isinstance(source_id, int) else None
        classification = classified.get(source_id) if isinstance(source_id, int) else None
        items.append(
            TaskItem(
                task_id=task.id,
                kind=task.kind,
                reason=task.reason,
                created_at=task.created_at,
                case_id=task.case_id,
                reference=reference,
                creditor_code=code,
                case_state=state,
                language=classification.language if classification else language,
                decision=meta,
                source_kind=source.kind if source else None,
                source_subject=source.subject if source else None,
                source_excerpt=_excerpt(source.body) if source else None,
                route=route_of(dict(source.meta or {})) if source else {},
                classification=classification,
            )
        )
    return items, more


def _unmatched_item(row: InboundMessage) -> UnmatchedItem:
    sender, subject, excerpt, kind = "unknown", "", "", "unknown"
    if row.analysis is not None and row.understood is not None:
        understood = from_json(row.id, row.analysis, json.loads(row.understood))
        sender = redact_address(understood.from_.address) if understood.from_ else "unknown"
        subject = understood.subject
        excerpt = _excerpt(understood.reply_text or understood.text) or ""
        kind = understood.kind.value
    return UnmatchedItem(
        inbound_id=row.id,
        received_at=row.received_at,
        sender=sender,
        subject=subject,
        excerpt=excerpt,
        kind=kind,
        route=dict(row.route or {}),
    )


async def _unmatched(
    session: AsyncSession, filters: Filters, page: int, now: datetime
) -> tuple[list[UnmatchedItem], bool]:
    if filters.case_only:
        return [], False
    stmt = (
        select(InboundMessage)
        .where(InboundMessage.state == TRIAGE_STATE)
        .options(defer(InboundMessage.raw))
        .order_by(InboundMessage.received_at, InboundMessage.id)
    )
    if filters.min_age_days:
        stmt = stmt.where(InboundMessage.received_at <= now - timedelta(days=filters.min_age_days))
    rows = list(
        (await session.scalars(stmt.limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE))).all()
    )
    return [_unmatched_item(r) for r in rows[:PAGE_SIZE]], len(rows) > PAGE_SIZE


async def triage_page(
    database: Database,
    principal: Principal,
    filters: Filters,
    page: int = 1,
    remote_addr: str | None = None,
    now: datetime | None = None,
) -> TriagePage:
    """One page of the queue (tasks and unmatched messages), oldest first; audited."""
    if principal.creditor_scope is not None:
        # the queue is the agency's work; creditors have their own pages
        raise NotFoundError("no triage queue")
    now = now or utcnow()
    page = max(page, 1)
    async with database.transaction() as session:
        tasks, more_tasks = await _tasks(session, filters, page, now)
        unmatched, more_unmatched = await _unmatched(session, filters, page, now)
        creditors = list(await session.scalars(select(Creditor.code).order_by(Creditor.code)))
        await audit.record(
            session,
            principal.actor,
            "triage.list",
            "triage",
            None,
            remote_addr,
            {
                "page": page,
                "task_ids": [t.task_id for t in tasks],
                "inbound_ids": [u.inbound_id for u in unmatched],
                "filters": {
                    "intent": filters.intent,
                    "language": filters.language,
                    "creditor": filters.creditor,
                    "min_age_days": filters.min_age_days,
                },
            },
        )
    return TriagePage(tasks, unmatched, page, more_tasks, more_unmatched, creditors)
