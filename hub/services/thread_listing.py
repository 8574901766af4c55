"""A case's whole thread for the command line (``hub thread``): found by reference, audited.

Unlike the web's :mod:`hub.services.case_view`, the caller is the operator of the hub, who sees
every creditor's cases and the internal notes; the read is still written to the audit log,
because the thread holds personal data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.errors import NotFoundError, UserError
from hub.security import audit
from hub.storage.db import Database
from hub.storage.models import Attachment, Case, Creditor, InboundMessage, ThreadEntry


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
    #: a debtor's mail: what they wrote (without quotes and signature), and attachment names
    reply_text: str | None = None
    attachments: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "reply_text": self.reply_text,
            "attachments": list(self.attachments),
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


async def _reply_texts(session: AsyncSession, entry_ids: list[int]) -> dict[int, str]:
    """The reply text of each entry recorded from an inbound mail (sealed on the message)."""
    found: dict[int, str] = {}
    if not entry_ids:
        return found
    rows = await session.execute(
        select(InboundMessage.thread_entry_id, InboundMessage.understood).where(
            InboundMessage.thread_entry_id.in_(entry_ids)
        )
    )
    for entry_id, sealed in rows:
        if entry_id is not None and sealed:
            text = json.loads(sealed).get("reply_text")
            if isinstance(text, str):
                found[int(entry_id)] = text
    return found


async def _attachment_names(
    session: AsyncSession, entry_ids: list[int]
) -> dict[int, tuple[str, ...]]:
    names: dict[int, list[str]] = {}
    if entry_ids:
        rows = await session.execute(
            select(Attachment.thread_entry_id, Attachment.filename, Attachment.size)
            .where(Attachment.thread_entry_id.in_(entry_ids))
            .order_by(Attachment.id)
        )
        for entry_id, name, size in rows:
            names.setdefault(int(entry_id), []).append(f"{name} ({size} bytes)")
    return {k: tuple(v) for k, v in names.items()}


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
        replies = await _reply_texts(session, [e.id for e in entries])
        files = await _attachment_names(session, [e.id for e in entries])
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
                reply_text=replies.get(e.id),
                attachments=files.get(e.id, ()),
            )
            for e in entries
        ],
    )
