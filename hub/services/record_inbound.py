"""Record an understood inbound message on its case: route, thread entry, classify, automate.

The step after the inbound stages (:mod:`hub.inbound.pipeline`, state ``processed``). For each
such message, in ONE transaction under the case lock:

1. :func:`~hub.inbound.understand.load_understood` and :func:`~hub.routing.service.route`; the
   decision (no addresses) goes to ``inbound_messages.route``;
2. routed to a case: one thread entry of the message's kind (``inbound`` for a debtor's reply,
   else ``auto_reply``, ``bounce``, ``read_receipt``, ``feedback_report``) by ``debtor`` or
   ``sender:unverified``, with the full text, the raw bytes, the attachments of an unencrypted
   message, and in ``meta`` the non-personal facts (route, crypto and signature verdicts,
   detection and reply-text rules, trust); not routed: state ``triage`` and nothing on any
   case (a forged reference never touches the case it names);
3. a reply: its reply text (not the quoted history) classified in the classifier's process
   pool, a :class:`~hub.storage.models.Classification` row and a ``classification`` entry, then
   :func:`~hub.services.automation.apply_intent` (which refuses low confidence and unverified
   senders); the answer owed (:mod:`hub.services.inbound_answers`) is kept on the message;
4. a bounce: the bounced addresses of the case's debtor marked ``undeliverable`` (a permanent
   failure only), the entry referencing our original message's entry.

State ``routed`` (or ``answering`` while an answer is owed), ``thread_entry_id`` set. A crash
before the commit leaves the message ``processed``; a routed message is never recorded again.
The answer goes out after the commit through the idempotent ``queue_answer``.

The classification is computed before that transaction from a read-only look at the message
and its case (:mod:`hub.services.classify_ahead`), so the classifier pool is not awaited while
the transaction holds SQLite's single write lock (taken by
:func:`~hub.services.thread.lock_case`); in the transaction that result is used only when the
classifier would be given exactly the same input, else it classifies there, as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import BrokenExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from hub.config import Settings
from hub.crypto.at_rest import Keyring
from hub.domain.dunning import policy_from_settings
from hub.domain.routing import MessageKind, RouteDecision
from hub.domain.understood import Understood
from hub.inbound.parse import parse_mail
from hub.inbound.store import quarantine
from hub.inbound.understand import load_understood
from hub.routing.context import OUR_MESSAGE_KINDS, RoutingPolicy
from hub.routing.reply_token import reply_token_key
from hub.routing.service import route
from hub.services.automation import apply_intent
from hub.services.classify_ahead import Classify, classify_ahead, classify_args, reusing
from hub.services.inbound_answers import PendingAnswer, answer_for, send_pending
from hub.services.inbound_entry import classification_meta, entry_meta
from hub.services.reminder_mail import ReminderMailer
from hub.services.thread import append_entry, load_case, lock_case
from hub.storage.db import Database
from hub.storage.models import (
    Attachment,
    Case,
    Creditor,
    DebtorEmail,
    InboundMessage,
    OutboxMessage,
    ThreadEntry,
)
from hub.storage.models import Classification as ClassificationRow

log = logging.getLogger(__name__)


PROCESSED, ROUTED, ANSWERING, TRIAGE = "processed", "routed", "answering", "triage"
ENTRY_KIND = {
    MessageKind.REPLY: "inbound",
    MessageKind.AUTO_REPLY: "auto_reply",
    MessageKind.BOUNCE: "bounce",
    MessageKind.READ_RECEIPT: "read_receipt",
    MessageKind.FEEDBACK_REPORT: "feedback_report",
}
CLASSIFIER_ACTOR = "system:classifier"
UNDELIVERABLE = "undeliverable"


@dataclass
class RecordCounts:
    routed: int = 0
    triage: int = 0
    classified: int = 0
    answers: int = 0
    failed: int = 0

    def summary(self) -> str:
        return (
            f"routed={self.routed} triage={self.triage} classified={self.classified} "
            f"answers={self.answers} record_failed={self.failed}"
        )


async def _attachments(
    session: AsyncSession, entry: ThreadEntry, row: InboundMessage, understood: Understood
) -> int:
    """Attachment rows for an unencrypted message (an encrypted one's parts stay in its raw
    bytes: decrypting again here would put gpg on this path; the count is in ``meta``)."""
    if not understood.attachment_count or understood.crypto.encrypted:
        return 0
    parsed = await asyncio.to_thread(parse_mail, row.raw)
    stored = 0
    for part in parsed.attachments:
        if part.content is None:
            continue
        session.add(
            Attachment(
                thread_entry_id=entry.id,
                filename=part.filename or "attachment",
                content_type=part.content_type[:255],
                size=part.size,
                sha256=part.sha256,
                content=part.content,
            )
        )
        stored += 1
    return stored


async def _our_entry_id(
    session: AsyncSession, case_id: int, message_id: str | None, outbox_id: int | None
) -> int | None:
    """The thread entry of our message a report is about (by outbox row, else Message-ID)."""
    if outbox_id is not None:
        found = await session.scalar(
            select(OutboxMessage.thread_entry_id).where(OutboxMessage.id == outbox_id)
        )
        if found is not None:
            return int(found)
    if message_id:
        found = await session.scalar(
            select(ThreadEntry.id).where(
                ThreadEntry.case_id == case_id,
                ThreadEntry.message_id == message_id,
                ThreadEntry.kind.in_(OUR_MESSAGE_KINDS),
            )
        )
        return None if found is None else int(found)
    return None


async def _mark_undeliverable(
    session: AsyncSession, keyring: Keyring, case: Case, understood: Understood
) -> list[int]:
    """The case's debtor's addresses among the bounced recipients, marked undeliverable."""
    if understood.bounce_permanent is False:
        return []  # a delay or a temporary failure: the address stays
    hashes = {keyring.email_hash(a) for a in understood.bounce_recipients if "@" in a}
    if not hashes:
        return []
    ids = list(
        (
            await session.scalars(
                select(DebtorEmail.id).where(
                    DebtorEmail.debtor_id == case.debtor_id,
                    DebtorEmail.address_hash.in_(sorted(hashes)),
                    DebtorEmail.status == "active",
                )
            )
        ).all()
    )
    if ids:
        await session.execute(
            update(DebtorEmail)
            .where(DebtorEmail.id.in_(ids))
            .values(status=UNDELIVERABLE)
            .execution_options(synchronize_session=False)
        )
    return ids


async def _classify_and_act(
    session: AsyncSession,
    settings: Settings,
    classify: Classify,
    case: Case,
    entry: ThreadEntry,
    row: InboundMessage,
    understood: Understood,
    decision: RouteDecision,
    now: datetime,
) -> PendingAnswer | None:
    result = await classify(*classify_args(case, row, understood))
    session.add(
        ClassificationRow(
            thread_entry_id=entry.id,
            intent=result.intent,
            subtype=result.fields.get("subtype"),
            confidence=result.confidence,
            language=result.language[:8],
            fields={k: v for k, v in result.fields.items()},
            model_version=result.model_version[:64],
            is_suggestion=result.is_suggestion,
            created_at=now,
        )
    )
    await append_entry(
        session,
        case.id,
        kind="classification",
        actor=CLASSIFIER_ACTOR,
        now=now,
        meta=classification_meta(result, entry.id),
    )
    creditor_settings = await session.scalar(
        select(Creditor.settings).where(Creditor.id == case.creditor_id)
    )
    decisions = await apply_intent(
        session,
        case.id,
        intent=result.intent,
        fields=result.fields,
        confidence=result.confidence,
        is_suggestion=result.is_suggestion,
        sender_verified=decision.sender_verified,
        source_entry_id=entry.id,
        now=now,
        policy=policy_from_settings((creditor_settings or {}).get("dunning")),
    )
    return answer_for(
        settings,
        case_id=case.id,
        intent=result.intent,
        fields=result.fields,
        decisions=decisions,
        inbound_id=row.id,
        message_id=understood.message_id,
        sender_verified=decision.sender_verified,
        is_suggestion=result.is_suggestion,
    )


async def record_one(
    session: AsyncSession,
    keyring: Keyring,
    settings: Settings,
    classify: Classify,
    row: InboundMessage,
    now: datetime,
) -> PendingAnswer | None:
    """Route and record one ``processed`` message in the caller's transaction (see above)."""
    understood = await load_understood(session, row.id)
    decision = await route(
        session,
        keyring,
        reply_token_key(settings.security),
        understood.routing_input(row.received_at),
        policy=RoutingPolicy.from_settings(settings),
    )
    route_json = decision.to_json()
    if decision.case_id is None:
        row.route, row.state = route_json, TRIAGE
        log.info("record: inbound %s to triage (%s)", row.id, route_json["triage_reason"])
        return None
    await lock_case(session, decision.case_id)
    case = await load_case(session, decision.case_id)
    meta = entry_meta(row, understood, decision)
    kind = ENTRY_KIND[understood.kind]
    if understood.kind is MessageKind.BOUNCE:
        meta["original_message_id"] = understood.original_message_id
        meta["in_reply_to_entry"] = await _our_entry_id(
            session, case.id, understood.original_message_id, decision.outbox_id
        )
        meta["outbox_id"] = decision.outbox_id
        meta["final"] = "bounced" if understood.bounce_permanent is not False else "delayed"
        meta["enhanced_status"] = understood.bounce_status
        meta["marked_undeliverable_email_ids"] = await _mark_undeliverable(
            session, keyring, case, understood
        )
    elif understood.original_message_id:
        meta["original_message_id"] = understood.original_message_id
    entry = await append_entry(
        session,
        case.id,
        kind=kind,
        actor="debtor" if decision.sender_verified else "sender:unverified",
        now=now,
        meta=meta,
        body=understood.text,
    )
    entry.subject = understood.subject
    entry.raw_message = row.raw
    entry.message_id = understood.message_id
    if await _attachments(session, entry, row, understood):
        await session.flush()
    pending: PendingAnswer | None = None
    if understood.kind is MessageKind.REPLY:
        pending = await _classify_and_act(
            session, settings, classify, case, entry, row, understood, decision, now
        )
    if pending is not None:
        route_json["answer"] = pending.to_json()
    row.route = route_json
    row.thread_entry_id = entry.id
    row.state = ANSWERING if pending is not None else ROUTED
    await session.flush()
    log.info("record: inbound %s on case %s as entry %s (%s)", row.id, case.id, entry.seq, kind)
    return pending


async def _shunt(session: AsyncSession, row: InboundMessage, exc: Exception) -> None:
    """A message the record step cannot handle goes to the quarantine for a person; the
    messages behind it go on."""
    log.warning("record: inbound %s quarantined (%s)", row.id, type(exc).__name__)
    await quarantine(
        session, row, f"imap:{row.account}/{row.mailbox}"[:400],
        f"record: {type(exc).__name__}", f"{exc!r}"[:2000], row.raw,
    )  # fmt: skip


async def _claim_next(session: AsyncSession, after: int) -> InboundMessage | None:
    """The oldest message waiting for this step after id ``after`` (PostgreSQL: not one a
    concurrent worker holds; SQLite has one writer at a time)."""
    row: InboundMessage | None = await session.scalar(
        select(InboundMessage)
        .where(InboundMessage.state.in_((PROCESSED, ANSWERING)), InboundMessage.id > after)
        .order_by(InboundMessage.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    return row


async def _record_next(
    database: Database,
    settings: Settings,
    classify: Classify,
    after: int,
    now: datetime,
    counts: RecordCounts,
) -> tuple[int | None, PendingAnswer | None]:
    """Record the next message in its own transaction: (its id or None, the answer owed)."""
    inbound_id: int | None = None
    classify = reusing(classify, await classify_ahead(database, settings, classify, after))
    try:
        async with database.transaction() as session:
            row = await _claim_next(session, after)
            if row is None:
                return None, None
            inbound_id = row.id
            if row.state == ANSWERING:
                answer = (row.route or {}).get("answer")
                return row.id, None if not answer else PendingAnswer.from_json(answer)
            pending = await record_one(session, database.keyring, settings, classify, row, now)
            if row.state == TRIAGE:
                counts.triage += 1
            else:
                counts.routed += 1
                counts.classified += _is_reply(row)
            return row.id, pending
    except (SQLAlchemyError, OSError, BrokenExecutor):
        raise  # ours and temporary: the message stays processed and is tried again
    except Exception as exc:
        if inbound_id is None:
            raise
        async with database.transaction() as session:
            failed = await session.get(InboundMessage, inbound_id)
            if failed is not None and failed.state == PROCESSED:
                await _shunt(session, failed, exc)
                counts.failed += 1
        return inbound_id, None


async def record_processed(
    database: Database,
    settings: Settings,
    classify: Classify,
    mailer: ReminderMailer | None,
    *,
    now: Callable[[], datetime] | None = None,
) -> RecordCounts:
    """Record every ``processed`` message, oldest first, one transaction each; then send the
    answers owed (also those a crash left ``answering``). ``mailer`` None keeps answers owed."""
    clock = now or (lambda: datetime.now(UTC))
    counts = RecordCounts()
    last_id = 0
    while True:
        found, pending = await _record_next(database, settings, classify, last_id, clock(), counts)
        if found is None:
            return counts
        last_id = found
        if pending is None or mailer is None:
            continue
        outcome = await send_pending(database, settings, mailer, pending, clock())
        counts.answers += outcome.status in ("queued", "draft")
        async with database.transaction() as session:
            await session.execute(
                update(InboundMessage)
                .where(InboundMessage.id == last_id, InboundMessage.state == ANSWERING)
                .values(state=ROUTED)
            )
        log.info(
            "record: answer %s for inbound %s: %s", pending.kind.value, last_id, outcome.status
        )


def _is_reply(row: InboundMessage) -> int:
    return 1 if (row.analysis or {}).get("kind") == MessageKind.REPLY.value else 0
