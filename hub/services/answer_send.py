"""Send one answer in a case's thread: address, protection, build, thread entry and outbox row.

The step shared by the hub's automatic answers, approved drafts and collectors' replies
(:mod:`hub.services.conversation` decides *whether* to answer; this module does it). The
caller holds the case lock (:func:`hub.services.thread.lock_case`) inside its transaction;
:func:`send_answer` then, in that transaction:

1. picks the debtor's address exactly as reminders do (an opted-out or undeliverable address
   gets nothing); the one exception is the acknowledgement of a cease-contact request, which
   goes once to the address that was just opted out, as the last mail;
2. applies the creditor's :class:`~hub.domain.dunning.EncryptionPolicy` exactly as reminders
   do: encrypted to the debtor's key, else the notice (``encrypt-or-notice``), nothing
   (``require-encryption``, recorded), or clear text (``opportunistic``);
3. renders and protects in a worker thread (:meth:`ReminderMailer.build_rendered`), threaded:
   ``In-Reply-To`` the debtor's message, ``References`` the case's earlier Message-IDs, the
   same signed reply address;
4. writes the ``answer`` thread entry (the exact bytes) and the outbox row under the answer's
   idempotency key, whose envelope sender is the bounce address naming that row.

Whatever stops an answer is recorded as an internal ``answer_withheld`` entry with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.config import Settings
from hub.domain.answers import AnswerContext, AnswerKind, reply_subject
from hub.domain.dunning import policy_from_settings
from hub.domain.mail import NoticeContext, language_or_default
from hub.errors import ConfigError, PermanentError, TemporaryError, UserError
from hub.services.case_mail import policy_protection, record_and_queue, thread_message_ids
from hub.services.debtor_keys import choose_debtor_key
from hub.services.dunning_facts import case_links, pick_address
from hub.services.reminder_mail import (
    BuiltMail,
    OutgoingPlan,
    ReminderMailer,
    earlier_message_ids,
)
from hub.services.thread import append_entry
from hub.storage.db import Database
from hub.storage.models import Case, DebtorEmail, ThreadEntry

log = logging.getLogger(__name__)

ANSWER_KIND = "answer"
DRAFT_KIND = "answer_draft"
WITHHELD_KIND = "answer_withheld"
#: the entries that say an answer was handled (its idempotency key is in ``meta["key"]``)
HANDLED_KINDS = (ANSWER_KIND, DRAFT_KIND, WITHHELD_KIND)

REASONS = {
    "auto_reply": "the message is an automatic reply: never answered (no mail loops)",
    "bounce": "the message is a bounce: never answered",
    "read_receipt": "the message is a read receipt: never answered",
    "feedback_report": "the message is a feedback report: never answered",
    "not_a_reply": "the message is not a debtor's reply: never answered",
    "unverified_sender": "the sender is not verified: a collector decides",
    "low_confidence": "the classification is only a suggestion: a collector decides",
    "daily_limit": "the case reached its number of automatic answers for the day",
    "no_email": "the debtor has no email address",
    "opted_out": "the debtor opted out of email contact",
    "undeliverable": "every address of the debtor is undeliverable",
    "no_key": "the creditor requires encryption and the debtor has no usable key",
    "already_acknowledged": "the end of email contact was already confirmed once",
    "build_failed": "the message could not be built",
}


@dataclass(frozen=True)
class AnswerOutcome:
    """What became of one answer.

    ``status``: ``queued`` (in the outbox), ``draft`` (waits for a collector), ``withheld``
    (not sent, ``reason`` says why, recorded on the case) or ``duplicate`` (this answer was
    handled before: nothing written).
    """

    status: str
    reason: str | None = None
    #: the thread entry written (answer, draft or withheld), or the earlier one for a duplicate
    entry_id: int | None = None
    outbox_id: int | None = None
    protection: str | None = None
    message_id: str | None = None


@dataclass(frozen=True)
class AnswerRequest:
    """One answer to send, decided by the caller."""

    kind: AnswerKind
    #: checked facts (:func:`hub.domain.answers.answer_facts`)
    facts: Mapping[str, Any]
    key: str
    in_reply_to: str | None
    actor: str
    #: ``auto``, or ``collector:<name>`` for an approved draft or a collector's own reply
    approval: str
    now: datetime
    draft_id: int | None = None


async def handled_entries(session: AsyncSession, case_id: int) -> list[ThreadEntry]:
    """The case's answers, drafts and withheld answers, in thread order."""
    rows = await session.scalars(
        select(ThreadEntry)
        .where(ThreadEntry.case_id == case_id, ThreadEntry.kind.in_(HANDLED_KINDS))
        .order_by(ThreadEntry.seq)
        .execution_options(populate_existing=True)
    )
    return list(rows.all())


async def record_withheld(
    session: AsyncSession, case_id: int, request: AnswerRequest, reason: str, detail: str = ""
) -> AnswerOutcome:
    entry = await append_entry(
        session,
        case_id,
        kind=WITHHELD_KIND,
        actor=request.actor,
        now=request.now,
        internal=True,
        meta={
            "answer_kind": request.kind.value,
            "reason": reason,
            "detail": detail or REASONS.get(reason, reason),
            "key": request.key,
            "in_reply_to": request.in_reply_to,
            "draft_id": request.draft_id,
        },
    )
    log.info("answer: case %s %s withheld (%s)", case_id, request.kind.value, reason)
    return AnswerOutcome("withheld", reason=reason, entry_id=entry.id)


def answer_address(
    emails: Sequence[DebtorEmail], kind: AnswerKind
) -> tuple[str | None, str | None]:
    """The address an answer goes to, or ``(None, reason)``; see the module docstring."""
    if kind is not AnswerKind.ACKNOWLEDGE_CEASE_CONTACT:
        return pick_address(emails)
    usable = [e for e in emails if e.status in ("active", "opted_out")]
    if not emails:
        return None, "no_email"
    if not usable:
        return None, "undeliverable"
    chosen = next((e for e in usable if e.is_primary), usable[0])
    return chosen.address, None


def answer_context(
    settings: Settings,
    case: Case,
    kind: AnswerKind,
    facts: Mapping[str, Any],
    *,
    reply_address: str,
    portal_url: str,
    opt_out_url: str,
    debtor_subject: str | None,
) -> AnswerContext:
    creditor, debtor = case.creditor, case.debtor
    return AnswerContext(
        kind=kind,
        language=language_or_default(debtor.language, settings.hub.default_language),
        creditor_code=creditor.code,
        creditor_name=creditor.name,
        creditor_legal_identity=creditor.legal_identity,
        sender_name=settings.hub.name,
        debtor_name=debtor.name,
        reference=case.reference,
        currency=case.currency,
        balance=case.claim_amount + case.fees - case.paid_amount,
        iban=creditor.iban,
        bic=creditor.bic or None,
        portal_url=portal_url,
        reply_address=reply_address,
        opt_out_url=opt_out_url,
        reply_subject=reply_subject(debtor_subject),
        facts=facts,
    )


async def _subject_of(session: AsyncSession, case_id: int, message_id: str | None) -> str | None:
    """The subject of the debtor's message on this case (never another case's)."""
    if not message_id:
        return None
    candidates = {
        message_id.strip(),
        message_id.strip().strip("<>"),
        f"<{message_id.strip('<> ')}>",
    }
    entry = await session.scalar(
        select(ThreadEntry)
        .where(ThreadEntry.case_id == case_id, ThreadEntry.message_id.in_(candidates))
        .order_by(ThreadEntry.seq.desc())
        .limit(1)
    )
    return entry.subject if entry is not None else None


async def send_answer(
    session: AsyncSession,
    database: Database,
    settings: Settings,
    mailer: ReminderMailer,
    case: Case,
    request: AnswerRequest,
) -> AnswerOutcome:
    """Build and queue ``request`` on ``case`` (the caller holds the case lock); see above."""
    kind, now = request.kind, request.now
    if kind is AnswerKind.ACKNOWLEDGE_CEASE_CONTACT:
        for earlier in await handled_entries(session, case.id):
            if (
                earlier.kind == ANSWER_KIND
                and earlier.meta.get("answer_kind") == AnswerKind.ACKNOWLEDGE_CEASE_CONTACT.value
            ):
                return await record_withheld(session, case.id, request, "already_acknowledged")
    address, problem = answer_address(case.debtor.emails, kind)
    if address is None:
        return await record_withheld(session, case.id, request, problem or "no_email")
    policy = policy_from_settings((case.creditor.settings or {}).get("dunning"))
    key = await choose_debtor_key(session, database.keyring, case.debtor_id, address, now)
    protection = policy_protection(key, policy.encryption)
    if protection is None:
        return await record_withheld(session, case.id, request, "no_key")
    reply, portal, opt_out = case_links(settings, case.id)
    context = answer_context(
        settings,
        case,
        kind,
        request.facts,
        reply_address=reply,
        portal_url=portal,
        opt_out_url=opt_out,
        debtor_subject=await _subject_of(session, case.id, request.in_reply_to),
    )
    plan = OutgoingPlan(
        to_addr=address,
        reply_address=reply,
        notice=NoticeContext(context.language, portal, creditor_code=case.creditor.code),
        references=earlier_message_ids(await thread_message_ids(session, case.id)),
        in_reply_to=request.in_reply_to,
        protection=protection,
        key=key,
        date=now,
        # the last mail to an address that opted out offers no unsubscribe link
        list_unsubscribe=opt_out
        if opt_out.startswith("https://") and kind is not AnswerKind.ACKNOWLEDGE_CEASE_CONTACT
        else None,
        # RFC 3834, 5: the hub's answers are auto-replied; a collector's words are not automatic
        auto_submitted="auto-replied" if kind.automatic else None,
    )

    def build() -> BuiltMail:
        return mailer.build_rendered(mailer.renderer.render_answer(context), plan)

    try:
        built = await asyncio.to_thread(build)
    except (ConfigError, TemporaryError):
        raise
    except (UserError, PermanentError) as exc:
        log.warning("answer: case %s %s not built: %s", case.id, kind.value, exc)
        return await record_withheld(session, case.id, request, "build_failed", str(exc)[:300])
    return await _store(session, settings, case, request, plan, built, address)


async def _store(
    session: AsyncSession,
    settings: Settings,
    case: Case,
    request: AnswerRequest,
    plan: OutgoingPlan,
    built: BuiltMail,
    address: str,
) -> AnswerOutcome:
    queued = await record_and_queue(
        session,
        settings,
        case_id=case.id,
        kind=ANSWER_KIND,
        actor=request.actor,
        now=request.now,
        built=built,
        meta={
            "answer_kind": request.kind.value,
            "protection": built.protection.value,
            "approval": request.approval,
            "key": request.key,
            "in_reply_to": request.in_reply_to,
            "key_fingerprint": plan.key.fingerprint if plan.key else None,
            "key_kind": plan.key.kind if plan.key else None,
            "draft_id": request.draft_id,
        },
        idempotency_key=request.key,
        recipient=address,
    )
    entry, row = queued.entry, queued.row
    if queued.duplicate:
        # queued before under the same key (the case lock makes this rare): keep the old one
        await session.delete(entry)
        await session.flush()
        return AnswerOutcome("duplicate", entry_id=row.thread_entry_id, outbox_id=row.id)
    log.info(
        "answer: case %s %s queued (%s) outbox %s message-id %s",
        case.id,
        request.kind.value,
        built.protection.value,
        row.id,
        built.message_id,
    )
    return AnswerOutcome(
        "queued",
        entry_id=entry.id,
        outbox_id=row.id,
        protection=built.protection.value,
        message_id=built.message_id,
    )
