"""What every mail the hub sends on a case shares, reminders and answers alike.

The case loaded fresh with its creditor and the debtor's addresses, the Message-IDs already in
its thread (for ``References``), the protection the creditor's encryption policy allows when
the debtor has no key, and the one way a built mail is recorded: the thread entry holding the
exact bytes, and the outbox row, queued under an idempotency key, whose envelope sender is the
bounce address naming that row. All of it runs inside the caller's transaction, under the case
lock; nothing is sent here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from hub.config import Settings
from hub.domain.dunning import EncryptionPolicy
from hub.errors import NotFoundError
from hub.outbound.outbox import enqueue
from hub.routing.reply_token import make_bounce_address, reply_token_key
from hub.services.debtor_keys import ChosenKey
from hub.services.reminder_mail import BuiltMail, Protection, protection_for
from hub.services.thread import next_seq
from hub.storage.models import Case, Debtor, OutboxMessage, ThreadEntry


async def load_mail_case(session: AsyncSession, case_id: int) -> Case:
    """The case as it is now, with its creditor and the debtor's addresses (no lazy loads)."""
    case = await session.scalar(
        select(Case)
        .where(Case.id == case_id)
        .options(selectinload(Case.creditor), selectinload(Case.debtor).selectinload(Debtor.emails))
        .execution_options(populate_existing=True)
    )
    if case is None:
        raise NotFoundError(f"no case with id {case_id}")
    return case


async def thread_message_ids(session: AsyncSession, case_id: int) -> list[str | None]:
    """The Message-IDs of the case's thread entries, in thread order."""
    rows = await session.scalars(
        select(ThreadEntry.message_id)
        .where(ThreadEntry.case_id == case_id, ThreadEntry.message_id.is_not(None))
        .order_by(ThreadEntry.seq)
    )
    return list(rows.all())


def policy_protection(key: ChosenKey | None, encryption: EncryptionPolicy) -> Protection | None:
    """The key's protection; without a key the policy's: ``opportunistic`` in clear,
    ``encrypt-or-notice`` the notice, ``require-encryption`` None (send nothing)."""
    protection = protection_for(key)
    if protection is not None:
        return protection
    if encryption is EncryptionPolicy.REQUIRE_ENCRYPTION:
        return None
    if encryption is EncryptionPolicy.OPPORTUNISTIC:
        return Protection.PLAIN
    return Protection.NOTICE


@dataclass(frozen=True)
class QueuedMail:
    """The thread entry written and the outbox row for its key.

    ``row.thread_entry_id != entry.id`` when a row was queued earlier under the same key: that
    row is returned untouched, and the caller decides what becomes of its own entry."""

    entry: ThreadEntry
    row: OutboxMessage

    @property
    def duplicate(self) -> bool:
        return self.row.thread_entry_id != self.entry.id


async def record_and_queue(
    session: AsyncSession,
    settings: Settings,
    *,
    case_id: int,
    kind: str,
    actor: str,
    now: datetime,
    built: BuiltMail,
    meta: dict[str, Any],
    idempotency_key: str,
    recipient: str,
) -> QueuedMail:
    """Write ``built`` as the case's next thread entry and queue it (see the module doc)."""
    entry = ThreadEntry(
        case_id=case_id,
        seq=await next_seq(session, case_id),
        kind=kind,
        actor=actor,
        occurred_at=now,
        message_id=built.message_id,
        subject=built.subject,
        body=built.text,
        raw_message=built.raw,
        meta=meta,
    )
    session.add(entry)
    await session.flush()
    row = await enqueue(
        session,
        idempotency_key=idempotency_key,
        case_id=case_id,
        thread_entry_id=entry.id,
        envelope_from=settings.smtp.from_address,  # replaced below, once the id exists
        recipients=[recipient],
        message_id=built.message_id,
        message=built.raw,
    )
    queued = QueuedMail(entry, row)
    if queued.duplicate:
        return queued
    bounce = make_bounce_address(
        reply_token_key(settings.security), row.id, settings.smtp.reply_domain
    )
    await session.execute(
        update(OutboxMessage).where(OutboxMessage.id == row.id).values(envelope_from=bounce)
    )
    row.envelope_from = bounce
    return queued
