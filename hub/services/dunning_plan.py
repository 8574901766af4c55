"""Deciding one case's next reminder inside its transaction, before anything is built.

:func:`plan_reminder` locks the case row, checks again that the level is due, outside the
debtor's quiet hours and not queued yet (idempotency key ``reminder:<case id>:<level>``), picks
the debtor's address, chooses the key and applies the creditor's encryption policy, and returns
the :class:`~hub.services.reminder_mail.MailPlan`, or the reason no reminder goes out.
:func:`record_withheld` says that reason on the case. A case that is not due (any more) raises
:class:`AbandonError`, which rolls the case's transaction back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.config import Settings
from hub.crypto.at_rest import Keyring
from hub.domain.case_state import CaseState, may_dun
from hub.domain.dunning import (
    CaseDunningView,
    DunningLevel,
    DunningPolicy,
    due_level,
    next_send_time,
    policy_from_settings,
)
from hub.domain.mail import NoticeContext
from hub.errors import NotFoundError, UserError
from hub.services.case_mail import load_mail_case, policy_protection, thread_message_ids
from hub.services.debtor_keys import choose_debtor_key
from hub.services.dunning_facts import (
    ACTOR,
    REMINDER_KIND,
    WITHHELD_KIND,
    case_links,
    idempotency_key,
    pick_address,
    reminder_context,
)
from hub.services.reminder_mail import MailPlan, earlier_message_ids
from hub.services.thread import lock_case, next_seq
from hub.storage.models import Case, OutboxMessage, ThreadEntry


class AbandonError(Exception):
    """Roll the case's transaction back (dry run, or queued meanwhile)."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


@dataclass(frozen=True)
class ReminderDecision:
    """The case (locked, loaded), its policy and next level, and either the plan to send or
    the reason (a key of :data:`~hub.services.dunning_facts.WITHHELD_DETAILS`) not to."""

    case: Case
    policy: DunningPolicy
    level: DunningLevel
    plan: MailPlan | None
    problem: str | None


async def _last_reminder_at(session: AsyncSession, case_id: int) -> datetime | None:
    result: datetime | None = await session.scalar(
        select(func.max(ThreadEntry.occurred_at)).where(
            ThreadEntry.case_id == case_id, ThreadEntry.kind == REMINDER_KIND
        )
    )
    return result


def _view(case: Case, last: datetime | None) -> CaseDunningView:
    return CaseDunningView(
        state=CaseState(case.state),
        due_date=case.due_date,
        dunning_level=case.dunning_level,
        last_reminder_at=last,
        paused_until=case.paused_until,
    )


async def record_withheld(
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


async def plan_reminder(
    session: AsyncSession,
    settings: Settings,
    keyring: Keyring,
    case_id: int,
    now: datetime,
    *,
    for_render: bool = False,
) -> ReminderDecision:
    """Lock, re-check and decide (see the module doc).

    ``for_render`` (the preview of the next reminder) skips the due, quiet-hours and queued
    checks and raises :class:`UserError` when the case gets no further reminder.
    """
    await lock_case(session, case_id)
    try:
        case = await load_mail_case(session, case_id)
    except NotFoundError:
        raise AbandonError("gone") from None
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
        found = due_level(_view(case, last), policy, now)
        if found is None:
            raise AbandonError("not_due")
        level = found
        when = next_send_time(now, case.debtor.timezone, policy.quiet_hours)
        if when > now:
            raise AbandonError("quiet")
        taken = await session.scalar(
            select(OutboxMessage.id).where(
                OutboxMessage.idempotency_key == idempotency_key(case_id, level.level)
            )
        )
        if taken is not None:
            raise AbandonError("skipped")
    address, problem = pick_address(case.debtor.emails)
    if address is None:
        return ReminderDecision(case, policy, level, None, problem)
    key = await choose_debtor_key(session, keyring, case.debtor_id, address, now)
    protection = policy_protection(key, policy.encryption)
    if protection is None:
        return ReminderDecision(case, policy, level, None, "no_key")
    reply, portal, opt_out = case_links(settings, case.id)
    context = reminder_context(
        settings,
        case,
        policy,
        level,
        portal_url=portal,
        opt_out_url=opt_out,
        reply_address=reply,
        now=now,
    )
    ids = await thread_message_ids(session, case_id)
    plan = MailPlan(
        case_id=case.id,
        to_addr=address,
        reply_address=reply,
        reminder=context,
        notice=NoticeContext(context.language, portal, creditor_code=case.creditor.code),
        references=earlier_message_ids(ids),
        protection=protection,
        key=key,
        date=now,
    )
    return ReminderDecision(case, policy, level, plan, None)
