"""Queue the reminders that are due: one transaction per case, the outbox row inside it.

:func:`queue_due_reminders` scans the cases whose next dunning level may be due (one query:
state, due date, level, the time of the latest ``reminder`` entry, the debtor's time zone),
applies the creditor's policy (:mod:`hub.domain.dunning`), leaves out debtors inside their quiet
hours (counted as deferred), and for each remaining case, in its own transaction:

1. locks the case row (``SELECT … FOR UPDATE`` on PostgreSQL, the write lock on SQLite) and
   checks again that the level is due and not queued yet (idempotency key
   ``reminder:<case id>:<level>``), so two workers never send a level twice;
2. picks the debtor's address (the primary active one; none, opted out or undeliverable: no
   mail, and the case says why);
3. chooses the key (:mod:`hub.services.debtor_keys`) and applies the creditor's encryption
   policy: encrypted reminder; else ``encrypt-or-notice`` sends the notice without personal
   data, ``require-encryption`` sends nothing and the case says why, ``opportunistic`` sends
   the reminder in clear;
4. renders, composes and protects in a worker thread (:mod:`hub.services.reminder_mail`);
5. writes the ``reminder`` thread entry (the exact bytes in ``raw_message``), raises the case's
   level and fees, moves its state by ``reminder_sent``, and queues the outbox row whose
   envelope sender is the bounce address naming that row.

Nothing is sent here: the relay sends what the outbox holds once the transaction commits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from hub.config import Settings
from hub.domain.case_state import CaseEvent, CaseState, may_dun, transition
from hub.domain.dunning import (
    CaseDunningView,
    DunningLevel,
    DunningPolicy,
    EncryptionPolicy,
    due_level,
    next_send_time,
    policy_from_settings,
)
from hub.domain.mail import NoticeContext
from hub.errors import ConfigError, PermanentError, TemporaryError, UserError
from hub.outbound.outbox import enqueue
from hub.routing.reply_token import (
    make_bounce_address,
    reply_token_key,
)
from hub.services.debtor_keys import ChosenKey, choose_debtor_key
from hub.services.dunning_facts import (
    ACTOR,
    REMINDER_KIND,
    WITHHELD_DETAILS,
    WITHHELD_KIND,
    Candidate,
    DunningSummary,
    case_links,
    count_outcome,
    find_candidates,
    idempotency_key,
    pick_address,
    reminder_context,
)
from hub.services.reminder_mail import (
    BuiltMail,
    MailPlan,
    Protection,
    ReminderMailer,
    earlier_message_ids,
    protection_for,
)
from hub.services.thread import lock_case, next_seq
from hub.storage.db import Database
from hub.storage.models import Case, Creditor, Debtor, OutboxMessage, ThreadEntry

log = logging.getLogger(__name__)


class _AbandonError(Exception):
    """Roll the case's transaction back (dry run, or queued meanwhile)."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


async def _last_reminder_at(session: AsyncSession, case_id: int) -> datetime | None:
    result: datetime | None = await session.scalar(
        select(func.max(ThreadEntry.occurred_at)).where(
            ThreadEntry.case_id == case_id, ThreadEntry.kind == REMINDER_KIND
        )
    )
    return result


async def _load_case(session: AsyncSession, case_id: int) -> Case:
    case = await session.scalar(
        select(Case)
        .where(Case.id == case_id)
        .options(selectinload(Case.creditor), selectinload(Case.debtor).selectinload(Debtor.emails))
        .execution_options(populate_existing=True)
    )
    if case is None:
        raise _AbandonError("gone")
    return case


def _view(case: Case, last: datetime | None) -> CaseDunningView:
    return CaseDunningView(
        state=CaseState(case.state),
        due_date=case.due_date,
        dunning_level=case.dunning_level,
        last_reminder_at=last,
        paused_until=case.paused_until,
    )


async def _record_withheld(
    session: AsyncSession, case: Case, level: DunningLevel, reason: str, detail: str, now: datetime
) -> None:
    """Say on the case why a due reminder was not sent, once per level and reason."""
    latest = await session.scalar(
        select(ThreadEntry)
        .where(ThreadEntry.case_id == case.id, ThreadEntry.kind == WITHHELD_KIND)
        .order_by(ThreadEntry.seq.desc())
        .limit(1)
    )
    if (
        latest is not None
        and latest.meta.get("level") == level.level
        and (latest.meta.get("reason") == reason)
    ):
        return
    session.add(
        ThreadEntry(
            case_id=case.id,
            seq=await next_seq(session, case.id),
            kind=WITHHELD_KIND,
            actor=ACTOR,
            occurred_at=now,
            internal=True,
            meta={
                "level": level.level,
                "kind": level.kind.value,
                "reason": reason,
                "detail": detail,
            },
        )
    )


@dataclass
class _Pass:
    database: Database
    settings: Settings
    mailer: ReminderMailer | None
    now: datetime
    dry_run: bool
    summary: DunningSummary

    async def prepare(
        self, session: AsyncSession, case_id: int, *, for_render: bool = False
    ) -> tuple[Case, DunningPolicy, DunningLevel, MailPlan | None, str | None]:
        """Lock, re-check and decide; ``(…, plan, None)`` to send or ``(…, None, reason)``."""
        await lock_case(session, case_id)
        case = await _load_case(session, case_id)
        policy = policy_from_settings((case.creditor.settings or {}).get("dunning"))
        last = await _last_reminder_at(session, case_id)
        if for_render:
            if not may_dun(CaseState(case.state)):
                raise UserError(f"case {case.reference} is {case.state}: no reminder is sent")
            try:
                level = policy.level(case.dunning_level + 1)
            except KeyError:
                raise UserError(f"case {case.reference}: every dunning level was sent") from None
        else:
            found = due_level(_view(case, last), policy, self.now)
            if found is None:
                raise _AbandonError("not_due")
            level = found
            when = next_send_time(self.now, case.debtor.timezone, policy.quiet_hours)
            if when > self.now:
                raise _AbandonError("quiet")
            taken = await session.scalar(
                select(OutboxMessage.id).where(
                    OutboxMessage.idempotency_key == idempotency_key(case_id, level.level)
                )
            )
            if taken is not None:
                raise _AbandonError("skipped")
        address, problem = pick_address(case.debtor.emails)
        if address is None:
            return case, policy, level, None, problem
        key: ChosenKey | None = await choose_debtor_key(
            session, self.database.keyring, case.debtor_id, address, self.now
        )
        protection = protection_for(key)
        if protection is None:
            if policy.encryption is EncryptionPolicy.REQUIRE_ENCRYPTION:
                return case, policy, level, None, "no_key"
            if policy.encryption is EncryptionPolicy.OPPORTUNISTIC:
                protection = Protection.PLAIN
            else:
                protection = Protection.NOTICE
        reply, portal, opt_out = case_links(self.settings, case.id)
        context = reminder_context(
            self.settings,
            case,
            policy,
            level,
            portal_url=portal,
            opt_out_url=opt_out,
            reply_address=reply,
            now=self.now,
        )
        ids = (
            await session.scalars(
                select(ThreadEntry.message_id)
                .where(ThreadEntry.case_id == case_id, ThreadEntry.message_id.is_not(None))
                .order_by(ThreadEntry.seq)
            )
        ).all()
        plan = MailPlan(
            case_id=case.id,
            to_addr=address,
            reply_address=reply,
            reminder=context,
            notice=NoticeContext(context.language, portal, creditor_code=case.creditor.code),
            references=earlier_message_ids(ids),
            protection=protection,
            key=key,
            date=self.now,
        )
        return case, policy, level, plan, None

    async def process(self, candidate: Candidate) -> str:
        try:
            async with self.database.transaction() as session:
                return await self._process(session, candidate.case_id)
        except _AbandonError as abandon:
            return abandon.outcome

    async def _process(self, session: AsyncSession, case_id: int) -> str:
        case, _policy, level, plan, problem = await self.prepare(session, case_id)
        if plan is None:
            reason = problem or "unknown"
            if self.dry_run:
                raise _AbandonError(f"withheld:{reason}")
            await _record_withheld(session, case, level, reason, WITHHELD_DETAILS[reason], self.now)
            return f"withheld:{reason}"
        if self.dry_run or self.mailer is None:
            raise _AbandonError(f"queued:{plan.protection.value}")
        try:
            built = await asyncio.to_thread(self.mailer.build, plan)
        except (ConfigError, TemporaryError):
            raise
        except (UserError, PermanentError) as exc:
            # bad creditor data, a broken template, a key gpg refuses: the case says so
            log.warning("dunning: case %s level %s not built: %s", case.id, level.level, exc)
            await _record_withheld(session, case, level, "build_failed", str(exc)[:300], self.now)
            return "failed"
        await self._store(session, case, level, plan, built)
        return f"queued:{built.protection.value}"

    async def _store(
        self,
        session: AsyncSession,
        case: Case,
        level: DunningLevel,
        plan: MailPlan,
        built: BuiltMail,
    ) -> None:
        old_state = CaseState(case.state)
        new_state = transition(old_state, CaseEvent.REMINDER_SENT)
        meta: dict[str, Any] = {
            "level": level.level,
            "kind": level.kind.value,
            "fee": str(level.fee),
            "protection": built.protection.value,
            "key_fingerprint": plan.key.fingerprint if plan.key else None,
            "key_kind": plan.key.kind if plan.key else None,
            "state": {"from": old_state.value, "to": new_state.value},
        }
        entry = ThreadEntry(
            case_id=case.id,
            seq=await next_seq(session, case.id),
            kind=REMINDER_KIND,
            actor=ACTOR,
            occurred_at=self.now,
            message_id=built.message_id,
            subject=built.subject,
            body=built.text,
            raw_message=built.raw,
            meta=meta,
        )
        session.add(entry)
        await session.flush()
        await session.execute(
            update(Case)
            .where(Case.id == case.id)
            .values(
                dunning_level=level.level,
                fees=case.fees + level.fee,
                state=new_state.value,
            )
        )
        row = await enqueue(
            session,
            idempotency_key=idempotency_key(case.id, level.level),
            case_id=case.id,
            thread_entry_id=entry.id,
            envelope_from=self.settings.smtp.from_address,  # replaced below, once the id exists
            recipients=[plan.to_addr],
            message_id=built.message_id,
            message=built.raw,
        )
        if row.thread_entry_id != entry.id:
            raise _AbandonError("skipped")  # queued by someone else: roll our writes back
        bounce = make_bounce_address(
            reply_token_key(self.settings.security), row.id, self.settings.smtp.reply_domain
        )
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id == row.id).values(envelope_from=bounce)
        )
        row.envelope_from = bounce
        log.info(
            "dunning: case %s level %s queued (%s) outbox %s message-id %s",
            case.id,
            level.level,
            built.protection.value,
            row.id,
            built.message_id,
        )


async def queue_due_reminders(
    database: Database,
    settings: Settings,
    now: datetime,
    *,
    mailer: ReminderMailer | None,
    case_refs: Sequence[str] | None = None,
    dry_run: bool = False,
) -> DunningSummary:
    """Queue every reminder due at ``now`` (only for ``case_refs`` if given); see the module doc.

    ``mailer`` builds the messages (None only in a dry run, which decides but builds and
    stores nothing). A :class:`ConfigError` (no signing key, no reply-token key) stops the pass;
    any other problem with one case is recorded on that case and the pass goes on.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if mailer is None and not dry_run:
        raise ValueError("a mailer is needed unless dry_run")
    reply_token_key(settings.security)  # a missing key is a configuration error: fail first
    summary = DunningSummary(dry_run=dry_run)
    work = _Pass(database, settings, mailer, now, dry_run, summary)
    for candidate in await find_candidates(database, now, case_refs, summary):
        try:
            outcome = await work.process(candidate)
        except TemporaryError as exc:
            log.warning("dunning: case %s postponed: %s", candidate.case_id, exc)
            outcome = "failed:temporary"
        count_outcome(summary, candidate.reference, outcome)
    log.info("dunning: %s", summary.summary())
    return summary


async def render_next_reminder(
    database: Database,
    settings: Settings,
    mailer: ReminderMailer,
    reference: str,
    now: datetime,
    *,
    creditor_code: str | None = None,
) -> BuiltMail:
    """The exact message the next reminder of a case would be, after protection.

    Nothing is stored and the case is not changed (the transaction is rolled back); quiet hours
    and the waiting time are not applied. :class:`UserError` when no reminder would be sent.
    """
    async with database.sessions() as session:
        query = select(Case.id).join(Creditor, Creditor.id == Case.creditor_id)
        query = query.where(Case.reference == reference)
        if creditor_code:
            query = query.where(Creditor.code == creditor_code.upper())
        ids = (await session.scalars(query)).all()
    if not ids:
        raise UserError(f"no case {reference!r}")
    if len(ids) > 1:
        raise UserError(f"several creditors have a case {reference!r}: give --creditor CODE")
    work = _Pass(database, settings, mailer, now, True, DunningSummary(dry_run=True))
    async with database.sessions() as session:
        try:
            _case, _policy, _level, plan, problem = await work.prepare(
                session, ids[0], for_render=True
            )
        finally:
            await session.rollback()
    if plan is None:
        why = WITHHELD_DETAILS[problem or "unknown"]
        raise UserError(f"case {reference}: no reminder would be sent ({why})")
    return await asyncio.to_thread(mailer.build, plan)


__all__ = [
    "REMINDER_KIND",
    "WITHHELD_KIND",
    "DunningSummary",
    "queue_due_reminders",
    "render_next_reminder",
]
