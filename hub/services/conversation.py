"""The hub answers debtors as a conversation, and collectors answer from the thread.

:func:`queue_answer` is called by whoever understood a debtor's message (the automation) or
decided something about the case (a collector approving a plan). In one transaction under the
case lock it checks the guards, each recorded on the case (``answer_withheld``) when it stops
an answer, and then sends (:mod:`hub.services.answer_send`) or stores a draft:

* never an answer to anything but a debtor's reply: auto-replies, bounces, read receipts and
  feedback reports are never answered, whatever the caller asks;
* never for an unverified sender, nor for a classification that is only a suggestion;
* never to an opted-out or undeliverable address (one exception: the single confirmation that
  email contact ends);
* at most ``conversation.max_answers_per_case_per_day`` automatic answers per case within any
  24 hours (drafts included). With these, a mail loop cannot form: the hub answers only
  replies, marks its answers ``Auto-Submitted: auto-replied``, and a case's answers are capped;
* each answer once: the idempotency key ``answer:<case>:<inbound Message-ID>:<kind>`` makes
  re-processing the same inbound message a no-op (``duplicate``).

Per creditor (``creditor.settings["conversation"]["approval"]``, else
``conversation.approval``), answers go out at once (``auto``) or wait for a collector
(``collector``): an internal ``answer_draft`` entry that :func:`approve_answer` sends (once,
however often it is called) or :func:`discard_answer` drops.

:func:`queue_collector_reply` sends a collector's own words by the same path, as a reply to the
debtor's latest message on the case; it is neither capped nor held for approval.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.config import Settings
from hub.domain.answers import AnswerKind, answer_facts, facts_to_json
from hub.errors import NotFoundError, UserError
from hub.routing.reply_token import reply_token_key
from hub.services.answer_send import (
    ANSWER_KIND,
    DRAFT_KIND,
    AnswerOutcome,
    AnswerRequest,
    answer_address,
    answer_context,
    handled_entries,
    record_withheld,
    send_answer,
)
from hub.services.case_mail import load_mail_case
from hub.services.dunning_facts import case_links
from hub.services.reminder_mail import ReminderMailer
from hub.services.thread import append_entry, lock_case
from hub.storage.db import Database
from hub.storage.models import Case, ThreadEntry

log = logging.getLogger(__name__)

ACTOR = "system:conversation"
INBOUND_KIND = "inbound"
#: the only kind of inbound message the hub answers (hub.domain.routing.MessageKind.REPLY)
REPLY = "reply"
PENDING, APPROVED, DISCARDED, WITHHELD = "pending", "approved", "discarded", "withheld"
APPROVAL_MODES = ("auto", "collector")
_WINDOW = timedelta(hours=24)


def answer_key(case_id: int, source: str, kind: AnswerKind) -> str:
    """``answer:<case>:<source>:<kind>``; a long source (a Message-ID) is hashed to fit."""
    text = source.strip()
    if len(text) > 120:
        text = "sha256-" + hashlib.sha256(text.encode()).hexdigest()
    return f"answer:{case_id}:{text}:{kind.value}"


def approval_mode(settings: Settings, creditor_settings: Mapping[str, Any] | None) -> str:
    """``auto`` or ``collector`` for a creditor; an unknown override means ``collector``."""
    raw = (creditor_settings or {}).get("conversation") or {}
    value = (
        raw.get("approval", settings.conversation.approval) if isinstance(raw, Mapping) else None
    )
    if value not in APPROVAL_MODES:
        log.warning("conversation: creditor approval %r is not auto/collector: held", value)
        return "collector"
    return str(value)


def _guard(inbound_kind: str | None, sender_verified: bool, is_suggestion: bool) -> str | None:
    if inbound_kind is not None and inbound_kind != REPLY:
        known = ("auto_reply", "bounce", "read_receipt", "feedback_report")
        return str(inbound_kind) if inbound_kind in known else "not_a_reply"
    if not sender_verified:
        return "unverified_sender"
    if is_suggestion:
        return "low_confidence"
    return None


def _answers_today(entries: list[ThreadEntry], now: datetime) -> int:
    """The automatic answers (sent at once, or drafted) within the 24 hours before ``now``."""
    since = now - _WINDOW
    count = 0
    for entry in entries:
        if not since < entry.occurred_at <= now:
            continue
        if entry.meta.get("answer_kind") == AnswerKind.COLLECTOR_REPLY.value:
            continue
        if entry.kind == DRAFT_KIND or (
            entry.kind == ANSWER_KIND and entry.meta.get("approval") == "auto"
        ):
            count += 1
    return count


def _aware(now: datetime | None) -> datetime:
    value = now or datetime.now(UTC)
    if value.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return value


async def queue_answer(
    database: Database,
    settings: Settings,
    mailer: ReminderMailer,
    *,
    case_id: int,
    kind: AnswerKind | str,
    facts: Mapping[str, Any],
    in_reply_to: str | None,
    actor: str,
    now: datetime,
    inbound_kind: str | None,
    sender_verified: bool,
    is_suggestion: bool,
    occasion: str | None = None,
) -> AnswerOutcome:
    """Answer the debtor of ``case_id`` with ``kind`` (see the module docstring).

    ``in_reply_to`` is the Message-ID of the debtor's message being answered, and
    ``inbound_kind`` what the detect stage found it to be (a ``MessageKind`` value; only
    ``reply`` is ever answered); ``sender_verified`` and ``is_suggestion`` come from routing
    and classification. An answer that answers no message (a collector approved a plan) passes
    ``in_reply_to=None``, ``inbound_kind=None`` and an ``occasion`` naming what it is about
    (``"plan:17"``), which takes the Message-ID's place in the idempotency key.
    :class:`UserError` for an unknown kind or facts that do not fit it.
    """
    now = _aware(now)
    try:
        answer_kind = AnswerKind(kind)
    except ValueError:
        raise UserError(f"unknown answer kind {kind!r}") from None
    if answer_kind is AnswerKind.COLLECTOR_REPLY:
        raise UserError("a collector's reply goes through queue_collector_reply")
    checked = answer_facts(answer_kind, facts)
    source = in_reply_to or occasion
    if not source:
        raise ValueError("an answer needs in_reply_to (the message answered) or an occasion")
    if in_reply_to is not None and inbound_kind is None:
        raise ValueError("inbound_kind is required when answering a message")
    reply_token_key(settings.security)  # a missing key is a configuration error: fail first
    request = AnswerRequest(
        kind=answer_kind,
        facts=checked,
        key=answer_key(case_id, source, answer_kind),
        in_reply_to=in_reply_to,
        actor=actor,
        approval="auto",
        now=now,
    )
    async with database.transaction() as session:
        await lock_case(session, case_id)
        case = await load_mail_case(session, case_id)
        entries = await handled_entries(session, case_id)
        earlier = next((e for e in entries if e.meta.get("key") == request.key), None)
        if earlier is not None:
            log.info("answer: case %s %s already handled", case_id, answer_kind.value)
            return AnswerOutcome("duplicate", reason=earlier.kind, entry_id=earlier.id)
        reason = _guard(inbound_kind, sender_verified, is_suggestion)
        if reason is None and _answers_today(entries, now) >= (
            settings.conversation.max_answers_per_case_per_day
        ):
            reason = "daily_limit"
        if reason is None:
            address, problem = answer_address(case.debtor.emails, answer_kind)
            reason = problem if address is None else None
        if reason is not None:
            return await record_withheld(session, case_id, request, reason)
        if approval_mode(settings, case.creditor.settings) == "collector":
            return await _store_draft(session, settings, mailer, case, request)
        return await send_answer(session, database, settings, mailer, case, request)


async def _store_draft(
    session: AsyncSession,
    settings: Settings,
    mailer: ReminderMailer,
    case: Case,
    request: AnswerRequest,
) -> AnswerOutcome:
    """An internal draft with the facts to build from and the text a collector reviews."""
    reply, portal, opt_out = case_links(settings, case.id)
    context = answer_context(
        settings,
        case,
        request.kind,
        request.facts,
        reply_address=reply,
        portal_url=portal,
        opt_out_url=opt_out,
        debtor_subject=None,
    )
    rendered = await asyncio.to_thread(mailer.renderer.render_answer, context)
    entry = await append_entry(
        session,
        case.id,
        kind=DRAFT_KIND,
        actor=request.actor,
        now=request.now,
        internal=True,
        body=rendered.text,
        meta={
            "answer_kind": request.kind.value,
            "facts": facts_to_json(request.facts),
            "key": request.key,
            "in_reply_to": request.in_reply_to,
            "state": PENDING,
            "approval": "collector",
        },
    )
    entry.subject = rendered.subject
    await session.flush()
    log.info("answer: case %s %s drafted (entry %s)", case.id, request.kind.value, entry.id)
    return AnswerOutcome("draft", entry_id=entry.id)


async def _load_draft(session: AsyncSession, entry_id: int) -> ThreadEntry:
    draft = await session.scalar(
        select(ThreadEntry)
        .where(ThreadEntry.id == entry_id)
        .execution_options(populate_existing=True)
    )
    if draft is None or draft.kind != DRAFT_KIND:
        raise NotFoundError(f"no answer draft {entry_id}")
    return draft


async def _locked_draft(session: AsyncSession, entry_id: int) -> ThreadEntry:
    """The draft, read again once its case is locked (a concurrent decision is seen)."""
    draft = await _load_draft(session, entry_id)
    await lock_case(session, draft.case_id)
    return await _load_draft(session, entry_id)


def _decided(draft: ThreadEntry, state: str, collector: str, now: datetime, **more: Any) -> None:
    # a new dict: the JSON column only notices a replaced value
    draft.meta = {
        **draft.meta,
        "state": state,
        "decided_by": collector,
        "decided_at": now.isoformat(),
        **more,
    }


async def approve_answer(
    database: Database,
    settings: Settings,
    mailer: ReminderMailer,
    entry_id: int,
    collector: str,
    now: datetime | None = None,
) -> AnswerOutcome:
    """Send a pending draft (once: approving again returns ``duplicate``).

    The address and the encryption policy are checked again now: an address opted out since
    the draft was made gets nothing (``withheld``, recorded). :class:`NotFoundError` for an
    unknown draft, :class:`UserError` for a discarded one.
    """
    when = _aware(now)
    if not collector.strip():
        raise UserError("approve: name the collector")
    async with database.transaction() as session:
        draft = await _locked_draft(session, entry_id)
        state = draft.meta.get("state")
        if state == DISCARDED:
            raise UserError(f"answer draft {entry_id} was discarded")
        if state != PENDING:
            return AnswerOutcome(
                "duplicate", reason=str(state), entry_id=draft.meta.get("answer_entry_id")
            )
        kind = AnswerKind(draft.meta["answer_kind"])
        request = AnswerRequest(
            kind=kind,
            facts=answer_facts(kind, draft.meta.get("facts") or {}),
            key=str(draft.meta["key"]),
            in_reply_to=draft.meta.get("in_reply_to"),
            actor=f"collector:{collector}",
            approval=f"collector:{collector}",
            now=when,
            draft_id=draft.id,
        )
        case = await load_mail_case(session, draft.case_id)
        outcome = await send_answer(session, database, settings, mailer, case, request)
        _decided(
            draft,
            APPROVED if outcome.status in ("queued", "duplicate") else WITHHELD,
            collector,
            when,
            answer_entry_id=outcome.entry_id,
            reason=outcome.reason,
        )
        return outcome


async def discard_answer(
    database: Database, entry_id: int, collector: str, now: datetime | None = None
) -> bool:
    """Drop a pending draft; False when it was already decided (nothing changes then)."""
    when = _aware(now)
    if not collector.strip():
        raise UserError("discard: name the collector")
    async with database.transaction() as session:
        draft = await _locked_draft(session, entry_id)
        if draft.meta.get("state") != PENDING:
            return False
        _decided(draft, DISCARDED, collector, when)
        log.info("answer: draft %s discarded", entry_id)
        return True


async def latest_inbound_message_id(session: AsyncSession, case_id: int) -> str | None:
    """The Message-ID of the debtor's latest message on the case (an ``inbound`` entry)."""
    result: str | None = await session.scalar(
        select(ThreadEntry.message_id)
        .where(
            ThreadEntry.case_id == case_id,
            ThreadEntry.kind == INBOUND_KIND,
            ThreadEntry.message_id.is_not(None),
        )
        .order_by(ThreadEntry.seq.desc())
        .limit(1)
    )
    return result


async def queue_collector_reply(
    database: Database,
    settings: Settings,
    mailer: ReminderMailer,
    *,
    case_id: int,
    text: str,
    collector: str,
    now: datetime,
) -> AnswerOutcome:
    """Send a collector's words in the case's thread, answering the debtor's latest message.

    Same protection, address rules and threading as the hub's answers; not capped and not held
    for approval (a person wrote it). :class:`UserError` for an empty or overlong text.
    """
    now = _aware(now)
    if not collector.strip():
        raise UserError("a collector's reply needs the collector's name")
    checked = answer_facts(AnswerKind.COLLECTOR_REPLY, {"text": text})
    reply_token_key(settings.security)
    async with database.transaction() as session:
        await lock_case(session, case_id)
        case = await load_mail_case(session, case_id)
        in_reply_to = await latest_inbound_message_id(session, case_id)
        digest = hashlib.sha256(f"{collector}\n{now.isoformat()}\n{text}".encode()).hexdigest()
        request = AnswerRequest(
            kind=AnswerKind.COLLECTOR_REPLY,
            facts=checked,
            key=f"answer:{case_id}:collector:{digest[:32]}",
            in_reply_to=in_reply_to,
            actor=f"collector:{collector}",
            approval=f"collector:{collector}",
            now=now,
        )
        return await send_answer(session, database, settings, mailer, case, request)
