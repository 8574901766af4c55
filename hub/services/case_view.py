"""Reading cases for the web: the case list with search, one case's thread, an attachment.

Every function takes the :class:`~hub.security.roles.Principal` asking and applies the
object-level rule: a creditor user sees only its own creditor's cases and never a collector's
internal note. Something the caller may not see raises :class:`NotFoundError`, exactly like
something that does not exist. Every read of personal data is written to the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from hub.domain.case_state import CaseEvent, CaseState, allowed_events
from hub.errors import NotFoundError
from hub.security import audit
from hub.security.roles import Principal
from hub.services.case_import import name_hash
from hub.storage.db import Database
from hub.storage.models import Attachment, Case, Creditor, Debtor, DebtorEmail, ThreadEntry

PAGE_SIZE = 50


@dataclass(frozen=True)
class CaseSummary:
    id: int
    reference: str
    creditor_code: str
    debtor_name: str
    state: str
    claim_amount: Decimal
    fees: Decimal
    paid_amount: Decimal
    currency: str
    due_date: date

    @property
    def balance(self) -> Decimal:
        return self.claim_amount + self.fees - self.paid_amount

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "reference": self.reference,
            "creditor": self.creditor_code,
            "debtor_name": self.debtor_name,
            "state": self.state,
            "claim_amount": str(self.claim_amount),
            "fees": str(self.fees),
            "paid_amount": str(self.paid_amount),
            "balance": str(self.balance),
            "currency": self.currency,
            "due_date": self.due_date.isoformat(),
        }


@dataclass(frozen=True)
class AttachmentView:
    id: int
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class EntryView:
    id: int
    seq: int
    kind: str
    actor: str
    occurred_at: datetime
    subject: str | None
    body: str | None
    meta: dict[str, Any]
    internal: bool
    attachments: list[AttachmentView]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "seq": self.seq,
            "kind": self.kind,
            "actor": self.actor,
            "occurred_at": self.occurred_at.isoformat(),
            "subject": self.subject,
            "body": self.body,
            "meta": self.meta,
            "internal": self.internal,
            "attachments": [
                {"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size}
                for a in self.attachments
            ],
        }


@dataclass(frozen=True)
class CaseThread:
    case: CaseSummary
    entries: list[EntryView]
    events: frozenset[CaseEvent]


_S = TypeVar("_S", bound="Select[*tuple[Any, ...]]")


def _scoped(stmt: _S, principal: Principal) -> _S:
    scope = principal.creditor_scope
    return stmt if scope is None else stmt.where(Case.creditor_id == scope)


def _summary(case: Case, code: str) -> CaseSummary:
    return CaseSummary(
        id=case.id,
        reference=case.reference,
        creditor_code=code,
        debtor_name=case.debtor.name,
        state=case.state,
        claim_amount=case.claim_amount,
        fees=case.fees,
        paid_amount=case.paid_amount,
        currency=case.currency,
        due_date=case.due_date,
    )


async def list_cases(
    database: Database,
    principal: Principal,
    query: str = "",
    page: int = 1,
    remote_addr: str | None = None,
) -> list[CaseSummary]:
    """One page of the cases the caller may see, newest first; ``query`` matches exactly a
    reference, a debtor's name (via its keyed hash) or an email address (keyed hash)."""
    query = query.strip()
    stmt = (
        select(Case, Creditor.code)
        .join(Creditor, Creditor.id == Case.creditor_id)
        .options(selectinload(Case.debtor))
        .order_by(Case.id.desc())
        .limit(PAGE_SIZE)
        .offset(max(page - 1, 0) * PAGE_SIZE)
    )
    search = "none"
    if query:
        keyring = database.keyring
        if "@" in query:
            search = "email"
            debtors = select(DebtorEmail.debtor_id).where(
                DebtorEmail.address_hash == keyring.email_hash(query)
            )
            stmt = stmt.where(Case.debtor_id.in_(debtors))
        else:
            search = "reference_or_name"
            by_name = select(Debtor.id).where(Debtor.name_hash == name_hash(keyring, query))
            stmt = stmt.where(or_(Case.reference == query, Case.debtor_id.in_(by_name)))
    stmt = _scoped(stmt, principal)
    async with database.transaction() as session:
        rows = (await session.execute(stmt)).all()
        found = [_summary(case, code) for case, code in rows]
        await audit.record(
            session,
            principal.actor,
            "case.list",
            "case",
            None,
            remote_addr,
            {"search": search, "page": page, "case_ids": [c.id for c in found]},
        )
    return found


async def count_by_state(database: Database, principal: Principal) -> dict[str, int]:
    """How many visible cases are in each state (no personal data: not audited)."""
    stmt = _scoped(select(Case.state, func.count()).group_by(Case.state), principal)
    async with database.sessions() as session:
        return {state: int(n) for state, n in (await session.execute(stmt)).all()}


async def _visible_case(
    session: AsyncSession, principal: Principal, case_id: int
) -> tuple[Case, str]:
    stmt = _scoped(
        select(Case, Creditor.code)
        .join(Creditor, Creditor.id == Case.creditor_id)
        .options(selectinload(Case.debtor))
        .where(Case.id == case_id),
        principal,
    )
    row = (await session.execute(stmt)).one_or_none()
    if row is None:
        raise NotFoundError("no such case")
    case: Case = row[0]
    code: str = row[1]
    return case, code


async def case_thread(
    database: Database, principal: Principal, case_id: int, remote_addr: str | None = None
) -> CaseThread:
    """The case and every thread entry the caller may see, in order."""
    async with database.transaction() as session:
        case, code = await _visible_case(session, principal, case_id)
        stmt = (
            select(ThreadEntry)
            .where(ThreadEntry.case_id == case.id)
            .options(selectinload(ThreadEntry.attachments).defer(Attachment.content))
            .order_by(ThreadEntry.seq)
        )
        if principal.creditor_scope is not None:
            stmt = stmt.where(ThreadEntry.internal.is_(False))
        entries = (await session.execute(stmt)).scalars().all()
        await audit.record(
            session,
            principal.actor,
            "case.read",
            "case",
            case.id,
            remote_addr,
            {"entries": len(entries)},
        )
    views = [
        EntryView(
            id=e.id,
            seq=e.seq,
            kind=e.kind,
            actor=e.actor,
            occurred_at=e.occurred_at,
            subject=e.subject,
            body=e.body,
            meta=dict(e.meta or {}),
            internal=e.internal,
            attachments=[
                AttachmentView(a.id, a.filename, a.content_type, a.size) for a in e.attachments
            ],
        )
        for e in entries
    ]
    return CaseThread(_summary(case, code), views, allowed_events(CaseState(case.state)))


@dataclass(frozen=True)
class Download:
    filename: str
    content_type: str
    content: bytes


async def attachment_download(
    database: Database,
    principal: Principal,
    case_id: int,
    attachment_id: int,
    remote_addr: str | None = None,
) -> Download:
    """An attachment of a visible, non-hidden thread entry of a visible case."""
    async with database.transaction() as session:
        case, _ = await _visible_case(session, principal, case_id)
        stmt = (
            select(Attachment)
            .join(ThreadEntry, ThreadEntry.id == Attachment.thread_entry_id)
            .where(Attachment.id == attachment_id, ThreadEntry.case_id == case.id)
        )
        if principal.creditor_scope is not None:
            stmt = stmt.where(ThreadEntry.internal.is_(False))
        attachment = (await session.execute(stmt)).scalar_one_or_none()
        if attachment is None:
            raise NotFoundError("no such attachment")
        await audit.record(
            session,
            principal.actor,
            "attachment.download",
            "attachment",
            attachment.id,
            remote_addr,
            {"case_id": case.id, "size": attachment.size},
        )
        return Download(attachment.filename, attachment.content_type, attachment.content)
