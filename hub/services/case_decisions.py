"""A collector's decisions on a case page: plans, reverting a decision, a debtor's new address,
a reply to the debtor, and the hub's answer drafts.

Each function checks that the object named (plan, thread entry, draft) belongs to the case in
the URL, which the caller may see (else "not found"), calls the one service that owns the
change (:mod:`~hub.services.plans`, :mod:`~hub.services.revert`,
:mod:`~hub.services.conversation`) and writes the audit entry. The services write the thread
entries. :func:`workbench` lists, from a thread already read, what waits for a decision.
"""

from __future__ import annotations

import email.policy
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesParser
from email.utils import parseaddr
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.config import Settings
from hub.domain.automation import DECISION_KIND, STATE_KIND, PlanTerms, TaskKind
from hub.domain.routing import redact_address
from hub.errors import NotFoundError, UserError
from hub.security import audit
from hub.security.roles import Principal
from hub.services import conversation, plans
from hub.services.answer_send import AnswerOutcome
from hub.services.case_view import CaseThread, EntryView
from hub.services.reminder_mail import ReminderMailer
from hub.services.revert import NOT_REVERTIBLE_KINDS, revert_decision
from hub.services.tasks import close_tasks
from hub.services.thread import append_entry, lock_case
from hub.services.triage import route_of
from hub.storage.db import Database
from hub.storage.models import Case, DebtorEmail, InboundMessage, ThreadEntry, utcnow
from hub.storage.models_cases import InstallmentPlan

ADDRESS_KIND = "contact_added"
DRAFT_KIND = "answer_draft"


@dataclass(frozen=True)
class PlanView:
    id: int
    count: int | None
    amount_per_installment: str | None
    frequency: str | None
    start_date: str | None


@dataclass(frozen=True)
class Workbench:
    """What on this case waits for a collector."""

    plans: list[PlanView]
    drafts: list[EntryView]
    revertible: list[EntryView]
    #: (entry, redacted address, authenticated)
    addresses: list[tuple[EntryView, str, bool]]


def _revertible(entry: EntryView) -> bool:
    meta = entry.meta
    return (
        entry.kind in (STATE_KIND, DECISION_KIND)
        and entry.kind not in NOT_REVERTIBLE_KINDS
        and "from_state" in meta
        and "rule" in meta
        and meta.get("rule") != "revert"
        and meta.get("reverted_by") is None
    )


async def workbench(database: Database, thread: CaseThread) -> Workbench:
    """Proposed plans, pending drafts, revertible decisions and offered addresses."""
    async with database.sessions() as session:
        rows = await session.scalars(
            select(InstallmentPlan)
            .where(InstallmentPlan.case_id == thread.case.id, InstallmentPlan.status == "proposed")
            .order_by(InstallmentPlan.id)
        )
        proposed = [
            PlanView(
                p.id,
                p.count,
                None if p.amount_per_installment is None else str(p.amount_per_installment),
                p.frequency,
                None if p.start_date is None else p.start_date.isoformat(),
            )
            for p in rows
        ]
    drafts = [
        e for e in thread.entries if e.kind == DRAFT_KIND and e.meta.get("state") == "pending"
    ]
    revertible = [e for e in thread.entries if _revertible(e)][-10:]
    addresses = []
    for e in thread.entries:
        proposal = route_of(e.meta).get("proposed_address")
        if isinstance(proposal, dict) and not e.meta.get("address_added_by"):
            addresses.append(
                (e, str(proposal.get("redacted", "")), bool(proposal.get("authenticated")))
            )
    return Workbench(proposed, drafts, revertible, addresses)


async def _entry_of_case(session: AsyncSession, case_id: int, entry_id: int) -> ThreadEntry:
    entry = await session.scalar(
        select(ThreadEntry)
        .where(ThreadEntry.id == entry_id, ThreadEntry.case_id == case_id)
        .execution_options(populate_existing=True)
    )
    if entry is None:
        raise NotFoundError("no such thread entry")
    return entry


async def _case_exists(session: AsyncSession, principal: Principal, case_id: int) -> None:
    stmt = select(Case.id).where(Case.id == case_id)
    if principal.creditor_scope is not None:
        stmt = stmt.where(Case.creditor_id == principal.creditor_scope)
    if await session.scalar(stmt) is None:
        raise NotFoundError("no such case")


async def _plan_of_case(session: AsyncSession, case_id: int, plan_id: int) -> None:
    found = await session.scalar(
        select(InstallmentPlan.id).where(
            InstallmentPlan.id == plan_id, InstallmentPlan.case_id == case_id
        )
    )
    if found is None:
        raise NotFoundError("no such plan")


async def decide_plan(
    database: Database,
    principal: Principal,
    case_id: int,
    plan_id: int,
    *,
    approve: bool,
    changes: PlanTerms | None = None,
    reason: str = "",
    remote_addr: str | None = None,
    now: datetime | None = None,
) -> None:
    """Approve (with the collector's changes) or reject a proposed plan of this case."""
    now = now or utcnow()
    async with database.transaction() as session:
        await _case_exists(session, principal, case_id)
        await _plan_of_case(session, case_id, plan_id)
        if approve:
            plan = await plans.approve_plan(session, plan_id, principal.actor, now, changes)
            details: dict[str, Any] = {"plan_id": plan_id, "installments": plan.count}
        else:
            await plans.reject_plan(session, plan_id, principal.actor, now, reason)
            details = {"plan_id": plan_id}
        await audit.record(
            session,
            principal.actor,
            "plan.approve" if approve else "plan.reject",
            "case",
            case_id,
            remote_addr,
            details,
        )


async def revert(
    database: Database,
    principal: Principal,
    case_id: int,
    entry_id: int,
    remote_addr: str | None = None,
) -> None:
    """Undo the decision recorded by this case's entry ``entry_id``."""
    async with database.transaction() as session:
        await _case_exists(session, principal, case_id)
        await _entry_of_case(session, case_id, entry_id)
        decision = await revert_decision(session, entry_id, principal.actor)
        await audit.record(
            session,
            principal.actor,
            "decision.revert",
            "case",
            case_id,
            remote_addr,
            {"reverted_entry_id": entry_id, "thread_entry_id": decision.entry_id},
        )


async def _sender_address(session: AsyncSession, entry: ThreadEntry) -> str | None:
    """The From address of the stored message behind an inbound entry."""
    raw = entry.raw_message
    if raw is None:
        raw = await session.scalar(
            select(InboundMessage.raw).where(InboundMessage.thread_entry_id == entry.id)
        )
    if raw is None:
        return None
    message = BytesParser(policy=email.policy.compat32).parsebytes(raw, headersonly=True)
    _, address = parseaddr(str(message.get("From", "")))
    return address or None


async def add_offered_address(
    database: Database,
    principal: Principal,
    case_id: int,
    entry_id: int,
    remote_addr: str | None = None,
    now: datetime | None = None,
) -> None:
    """Add the new address a debtor wrote from, as routing proposed it, after checking it."""
    now = now or utcnow()
    async with database.transaction() as session:
        await _case_exists(session, principal, case_id)
        await lock_case(session, case_id)
        entry = await _entry_of_case(session, case_id, entry_id)
        meta = dict(entry.meta or {})
        proposal = route_of(meta).get("proposed_address")
        if not isinstance(proposal, dict) or meta.get("address_added_by"):
            raise UserError("this message offers no new address")
        address = await _sender_address(session, entry)
        keyring = database.keyring
        if address is None or keyring.email_hash(address) != proposal.get("address_hash"):
            raise UserError("the stored message does not carry the proposed address")
        case = await session.get(Case, case_id)
        assert case is not None
        if int(proposal.get("debtor_id", case.debtor_id)) != case.debtor_id:
            raise UserError("the proposal names another debtor")
        exists = await session.scalar(
            select(DebtorEmail.id).where(
                DebtorEmail.debtor_id == case.debtor_id,
                DebtorEmail.address_hash == keyring.email_hash(address),
            )
        )
        if exists is not None:
            raise UserError("the debtor has this address already")
        added = DebtorEmail(
            debtor_id=case.debtor_id,
            address=address,
            address_hash=keyring.email_hash(address),
            is_primary=False,
            verified=True,
            status="active",
            created_at=now,
        )
        session.add(added)
        await session.flush()
        entry.meta = {**meta, "address_added_by": principal.actor}
        await close_tasks(
            session, case_id, done_by=principal.actor, now=now, kinds=[TaskKind.CONTACT_CHANGE]
        )
        note = await append_entry(
            session,
            case_id,
            kind=ADDRESS_KIND,
            actor=principal.actor,
            now=now,
            internal=True,
            meta={
                "debtor_email_id": added.id,
                "redacted": redact_address(address),
                "from_entry_id": entry_id,
                "why": "a collector added the address the debtor wrote from",
            },
        )
        await audit.record(
            session,
            principal.actor,
            "debtor.address_add",
            "case",
            case_id,
            remote_addr,
            {"debtor_email_id": added.id, "thread_entry_id": note.id},
        )


def collector_name(principal: Principal) -> str:
    return principal.username


async def reply(
    database: Database,
    settings: Settings,
    mailer: ReminderMailer,
    principal: Principal,
    case_id: int,
    text: str,
    remote_addr: str | None = None,
    now: datetime | None = None,
) -> AnswerOutcome:
    """The collector's words to the debtor, threaded to the debtor's latest message."""
    async with database.sessions() as session:
        await _case_exists(session, principal, case_id)
    outcome = await conversation.queue_collector_reply(
        database,
        settings,
        mailer,
        case_id=case_id,
        text=text,
        collector=collector_name(principal),
        now=now or utcnow(),
    )
    await _audit_after(database, principal, "case.reply", case_id, remote_addr, outcome)
    return outcome


async def _audit_after(
    database: Database,
    principal: Principal,
    action: str,
    case_id: int,
    remote_addr: str | None,
    outcome: AnswerOutcome | None,
    **more: Any,
) -> None:
    details: dict[str, Any] = dict(more)
    if outcome is not None:
        details.update(status=outcome.status, thread_entry_id=outcome.entry_id)
    async with database.transaction() as session:
        await audit.record(session, principal.actor, action, "case", case_id, remote_addr, details)


async def decide_draft(
    database: Database,
    settings: Settings,
    mailer: ReminderMailer | None,
    principal: Principal,
    case_id: int,
    entry_id: int,
    *,
    approve: bool,
    remote_addr: str | None = None,
) -> str:
    """Send or discard one of this case's answer drafts; what happened, in a word."""
    async with database.sessions() as session:
        await _case_exists(session, principal, case_id)
        entry = await _entry_of_case(session, case_id, entry_id)
        if entry.kind != DRAFT_KIND:
            raise NotFoundError("no such draft")
    if approve:
        if mailer is None:
            raise ValueError("approving a draft needs the mailer")
        outcome = await conversation.approve_answer(
            database, settings, mailer, entry_id, collector_name(principal)
        )
        await _audit_after(
            database, principal, "answer.approve", case_id, remote_addr, outcome, draft=entry_id
        )
        return outcome.status
    dropped = await conversation.discard_answer(database, entry_id, collector_name(principal))
    await _audit_after(
        database, principal, "answer.discard", case_id, remote_addr, None, draft=entry_id
    )
    return "discarded" if dropped else "already decided"
