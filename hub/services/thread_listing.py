"""A case's whole thread for the command line (``hub thread``): found by reference, audited.

Unlike the web's :mod:`hub.services.case_view`, the caller is the operator of the hub, who sees
every creditor's cases and the internal notes; the read is still written to the audit log,
because the thread holds personal data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from hub.errors import NotFoundError, UserError
from hub.security import audit
from hub.storage.db import Database
from hub.storage.models import Case, Creditor, ThreadEntry


@dataclass(frozen=True)
class ThreadLine:
    seq: int
    occurred_at: str
    kind: str
    actor: str
    subject: str | None
    body: str | None
    internal: bool
    meta: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "occurred_at": self.occurred_at,
            "kind": self.kind,
            "actor": self.actor,
            "subject": self.subject,
            "body": self.body,
            "internal": self.internal,
            "meta": self.meta,
        }


@dataclass(frozen=True)
class CaseThreadListing:
    case_id: int
    reference: str
    creditor: str
    state: str
    entries: list[ThreadLine]


async def read_thread(
    database: Database, reference: str, *, creditor_code: str | None, actor: str
) -> CaseThreadListing:
    """Every entry of the case ``reference`` in order (``creditor_code`` when it is ambiguous)."""
    async with database.transaction() as session:
        stmt = (
            select(Case, Creditor.code)
            .join(Creditor, Creditor.id == Case.creditor_id)
            .where(Case.reference == reference)
        )
        if creditor_code is not None:
            stmt = stmt.where(Creditor.code == creditor_code)
        rows = (await session.execute(stmt)).all()
        if not rows:
            raise NotFoundError(f"no case {reference!r}")
        if len(rows) > 1:
            codes = ", ".join(sorted(code for _, code in rows))
            raise UserError(f"several creditors have a case {reference!r} ({codes}): --creditor")
        case, code = rows[0]
        entries = (
            await session.scalars(
                select(ThreadEntry).where(ThreadEntry.case_id == case.id).order_by(ThreadEntry.seq)
            )
        ).all()
        await audit.record(
            session, actor, "case.read", "case", case.id, None, {"entries": len(entries)}
        )
    return CaseThreadListing(
        case_id=case.id,
        reference=case.reference,
        creditor=code,
        state=case.state,
        entries=[
            ThreadLine(
                seq=e.seq,
                occurred_at=e.occurred_at.isoformat(),
                kind=e.kind,
                actor=e.actor,
                subject=e.subject,
                body=e.body,
                internal=e.internal,
                meta=dict(e.meta or {}),
            )
            for e in entries
        ],
    )
