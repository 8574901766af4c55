"""The scan and the facts of a dunning pass: which cases may be due, the summary, the links.

:func:`find_candidates` reads, in one query, what the rules need for every case that may be due
(state, due date, level, the latest ``reminder`` entry, the debtor's time zone) and sorts the
cases into not due, paused, inside quiet hours, and candidates; :mod:`hub.services.dunning`
then handles each candidate under its lock. The rest are the small pure pieces both use.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from hub.config import Settings
from hub.domain.case_state import CaseState, may_dun
from hub.domain.dunning import (
    CaseDunningView,
    DunningLevel,
    DunningPolicy,
    due_level,
    next_send_time,
    policy_from_settings,
)
from hub.domain.mail import DunningFee, ReminderContext, language_or_default
from hub.errors import UserError
from hub.routing.reply_token import REPLY_PREFIX, make_reply_address, reply_token_key
from hub.storage.db import Database
from hub.storage.models import Case, Creditor, Debtor, DebtorEmail, ThreadEntry

log = logging.getLogger(__name__)

ACTOR = "system:dunning"
REMINDER_KIND = "reminder"
#: a reminder that was due but not sent; the collector sees why (kept once per level and reason)
WITHHELD_KIND = "reminder_withheld"
DUNNING_STATES = (CaseState.OPEN.value, CaseState.REMINDED.value)


def idempotency_key(case_id: int, level: int) -> str:
    return f"reminder:{case_id}:{level}"


@dataclass
class DunningSummary:
    """What one pass did (or, in a dry run, would do)."""

    dry_run: bool = False
    considered: int = 0
    #: queued reminders by protection (pgp-mime, smime-gcm, smime-cbc, notice, plain)
    queued: Counter[str] = field(default_factory=Counter)
    not_due: int = 0
    paused: int = 0
    deferred_quiet: int = 0
    #: no mail: no address, opted out, undeliverable, no key under require-encryption, …
    withheld: Counter[str] = field(default_factory=Counter)
    #: queued meanwhile by someone else, or changed under us
    skipped: int = 0
    failed: int = 0
    #: (reference, outcome) per case that got past the scan
    cases: list[tuple[str, str]] = field(default_factory=list)

    @property
    def total_queued(self) -> int:
        return sum(self.queued.values())

    def summary(self) -> str:
        verb = "would queue" if self.dry_run else "queued"
        by = ", ".join(f"{k} {n}" for k, n in sorted(self.queued.items()))
        held = ", ".join(f"{k} {n}" for k, n in sorted(self.withheld.items()))
        return (
            f"considered {self.considered}; {verb} {self.total_queued}"
            + (f" ({by})" if by else "")
            + f"; not due {self.not_due}; paused {self.paused}; "
            f"deferred (quiet hours) {self.deferred_quiet}; "
            f"withheld {sum(self.withheld.values())}"
            + (f" ({held})" if held else "")
            + f"; skipped {self.skipped}; failed {self.failed}"
        )


@dataclass(frozen=True)
class Candidate:
    case_id: int
    reference: str


def pick_address(emails: Sequence[DebtorEmail]) -> tuple[str | None, str | None]:
    """``(address, None)`` to write to, or ``(None, reason)``.

    An opt-out of any address stops email contact altogether (the debtor asked not to be
    written to by email); otherwise the primary active address, else another active one. An
    address nobody has verified yet (one the debtor typed into the portal, say) is never used:
    a collector confirms it first.
    """
    if not emails:
        return None, "no_email"
    if any(e.status == "opted_out" for e in emails):
        return None, "opted_out"
    active = [e for e in emails if e.status == "active" and e.verified]
    if not active:
        return None, "undeliverable"
    chosen = next((e for e in active if e.is_primary), active[0])
    return chosen.address, None


def case_links(settings: Settings, case_id: int) -> tuple[str, str, str]:
    """The reply address, portal link and opt-out link of a case.

    The links carry the case's signed reply token: it names the case and cannot be forged or
    guessed. (The portal must still authenticate the debtor; the token only names the case.)
    """
    key = reply_token_key(settings.security)
    reply = make_reply_address(key, case_id, settings.smtp.reply_domain)
    token = reply.partition("@")[0].removeprefix(REPLY_PREFIX)
    base = settings.hub.base_url.rstrip("/")
    return reply, f"{base}/portal/c/{token}", f"{base}/portal/opt-out/{token}"


def reminder_context(
    settings: Settings,
    case: Case,
    policy: DunningPolicy,
    level: DunningLevel,
    *,
    portal_url: str,
    opt_out_url: str,
    reply_address: str,
    now: datetime,
) -> ReminderContext:
    creditor, debtor = case.creditor, case.debtor
    fees = tuple(
        DunningFee(lvl.level, lvl.kind, lvl.fee)
        for lvl in policy.levels
        if lvl.level <= level.level
    )
    language = language_or_default(debtor.language, settings.hub.default_language)
    pay_by = max(now.date() + timedelta(days=settings.dunning.pay_within_days), case.due_date)
    return ReminderContext(
        language=language,
        creditor_code=creditor.code,
        creditor_name=creditor.name,
        creditor_legal_identity=creditor.legal_identity,
        iban=creditor.iban,
        bic=creditor.bic or None,
        sender_name=settings.hub.name,
        debtor_name=debtor.name,
        reference=case.reference,
        claim_description=case.description,
        amount=case.claim_amount,
        currency=case.currency,
        fees=fees,
        paid_amount=case.paid_amount,
        due_date=case.due_date,
        pay_by=pay_by,
        level=level.level,
        level_kind=level.kind,
        portal_url=portal_url,
        reply_address=reply_address,
        opt_out_url=opt_out_url,
    )


WITHHELD_DETAILS = {
    "no_email": "the debtor has no email address",
    "opted_out": "the debtor opted out of email contact",
    "undeliverable": "every address of the debtor is undeliverable",
    "no_key": "the creditor requires encryption and the debtor has no usable key",
    "unknown": "no reason recorded",
}


async def find_candidates(
    database: Database,
    now: datetime,
    case_refs: Sequence[str] | None,
    summary: DunningSummary,
) -> list[Candidate]:
    last = (
        select(ThreadEntry.case_id, func.max(ThreadEntry.occurred_at).label("last"))
        .where(ThreadEntry.kind == REMINDER_KIND)
        .group_by(ThreadEntry.case_id)
        .subquery()
    )
    query = (
        select(
            Case.id,
            Case.reference,
            Case.state,
            Case.due_date,
            Case.dunning_level,
            Case.paused_until,
            Case.creditor_id,
            Debtor.timezone,
            last.c.last,
        )
        .join(Debtor, Debtor.id == Case.debtor_id)
        .outerjoin(last, last.c.case_id == Case.id)
        .order_by(Case.id)
    )
    if case_refs:
        query = query.where(Case.reference.in_(list(case_refs)))
    else:
        # level 1 is never due before the due date; other states are paused or finished
        query = query.where(Case.state.in_(DUNNING_STATES), Case.due_date <= now.date())
    async with database.sessions() as session:
        rows = (await session.execute(query)).all()
        creditor_ids = {row.creditor_id for row in rows}
        settings_by_id: dict[int, dict[str, Any] | None] = dict(
            (
                await session.execute(
                    select(Creditor.id, Creditor.settings).where(Creditor.id.in_(creditor_ids))
                )
            ).all()
        )
    policies: dict[int, DunningPolicy | None] = {}
    for creditor_id, raw in settings_by_id.items():
        try:
            policies[creditor_id] = policy_from_settings((raw or {}).get("dunning"))
        except UserError as exc:
            log.error("dunning: creditor %s has an invalid policy: %s", creditor_id, exc)
            policies[creditor_id] = None
    found: list[Candidate] = []
    for row in rows:
        summary.considered += 1
        policy = policies.get(row.creditor_id)
        if policy is None:
            summary.failed += 1
            summary.cases.append((row.reference, "failed:policy"))
            continue
        view = CaseDunningView(
            state=CaseState(row.state),
            due_date=row.due_date,
            dunning_level=row.dunning_level,
            last_reminder_at=row.last,
            paused_until=row.paused_until,
        )
        if not may_dun(view.state) or (view.paused_until is not None and view.paused_until > now):
            summary.paused += 1
            summary.cases.append((row.reference, "paused"))
            continue
        if due_level(view, policy, now) is None:
            summary.not_due += 1
            summary.cases.append((row.reference, "not_due"))
            continue
        if next_send_time(now, row.timezone, policy.quiet_hours) > now:
            summary.deferred_quiet += 1
            summary.cases.append((row.reference, "quiet"))
            continue
        found.append(Candidate(row.id, row.reference))
    return found


def count_outcome(summary: DunningSummary, reference: str, outcome: str) -> None:
    summary.cases.append((reference, outcome))
    kind, _, detail = outcome.partition(":")
    if kind == "queued":
        summary.queued[detail] += 1
    elif kind == "withheld":
        summary.withheld[detail] += 1
    elif kind == "not_due":
        summary.not_due += 1
    elif kind == "quiet":
        summary.deferred_quiet += 1
    elif kind == "failed":
        summary.failed += 1
    else:
        summary.skipped += 1
