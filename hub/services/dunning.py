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

Steps 1 to 3 are :func:`hub.services.dunning_plan.plan_reminder`; step 5 writes through
:func:`hub.services.case_mail.record_and_queue`, as the hub's answers do. Nothing is sent here:
the relay sends what the outbox holds once the transaction commits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.config import Settings
from hub.domain.case_state import CaseEvent, CaseState, transition
from hub.domain.dunning import DunningLevel
from hub.errors import ConfigError, PermanentError, TemporaryError, UserError
from hub.routing.reply_token import reply_token_key
from hub.services.case_mail import record_and_queue
from hub.services.dunning_facts import (
    ACTOR,
    REMINDER_KIND,
    WITHHELD_DETAILS,
    WITHHELD_KIND,
    Candidate,
    DunningSummary,
    count_outcome,
    find_candidates,
    idempotency_key,
)
from hub.services.dunning_plan import AbandonError, plan_reminder, record_withheld
from hub.services.reminder_mail import BuiltMail, MailPlan, ReminderMailer
from hub.storage.db import Database
from hub.storage.models import Case, Creditor

log = logging.getLogger(__name__)


@dataclass
class _Pass:
    database: Database
    settings: Settings
    mailer: ReminderMailer | None
    now: datetime
    dry_run: bool
    summary: DunningSummary

    async def process(self, candidate: Candidate) -> str:
        try:
            async with self.database.transaction() as session:
                return await self._process(session, candidate.case_id)
        except AbandonError as abandon:
            return abandon.outcome

    async def _process(self, session: AsyncSession, case_id: int) -> str:
        decision = await plan_reminder(
            session, self.settings, self.database.keyring, case_id, self.now
        )
        case, level, plan = decision.case, decision.level, decision.plan
        if plan is None:
            reason = decision.problem or "unknown"
            if self.dry_run:
                raise AbandonError(f"withheld:{reason}")
            await record_withheld(session, case, level, reason, WITHHELD_DETAILS[reason], self.now)
            return f"withheld:{reason}"
        if self.dry_run or self.mailer is None:
            raise AbandonError(f"queued:{plan.protection.value}")
        try:
            built = await asyncio.to_thread(self.mailer.build, plan)
        except (ConfigError, TemporaryError):
            raise
        except (UserError, PermanentError) as exc:
            # bad creditor data, a broken template, a key gpg refuses: the case says so
            log.warning("dunning: case %s level %s not built: %s", case.id, level.level, exc)
            await record_withheld(session, case, level, "build_failed", str(exc)[:300], self.now)
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
        queued = await record_and_queue(
            session,
            self.settings,
            case_id=case.id,
            kind=REMINDER_KIND,
            actor=ACTOR,
            now=self.now,
            built=built,
            meta=meta,
            idempotency_key=idempotency_key(case.id, level.level),
            recipient=plan.to_addr,
        )
        if queued.duplicate:
            raise AbandonError("skipped")  # queued by someone else: roll our writes back
        await session.execute(
            update(Case)
            .where(Case.id == case.id)
            .values(
                dunning_level=level.level,
                fees=case.fees + level.fee,
                state=new_state.value,
            )
        )
        log.info(
            "dunning: case %s level %s queued (%s) outbox %s message-id %s",
            case.id,
            level.level,
            built.protection.value,
            queued.row.id,
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
    async with database.sessions() as session:
        try:
            decision = await plan_reminder(
                session, settings, database.keyring, ids[0], now, for_render=True
            )
        finally:
            await session.rollback()
    plan = decision.plan
    if plan is None:
        why = WITHHELD_DETAILS[decision.problem or "unknown"]
        raise UserError(f"case {reference}: no reminder would be sent ({why})")
    return await asyncio.to_thread(mailer.build, plan)


__all__ = [
    "REMINDER_KIND",
    "WITHHELD_KIND",
    "DunningSummary",
    "queue_due_reminders",
    "render_next_reminder",
]
