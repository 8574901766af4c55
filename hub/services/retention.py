"""Retention (storage limitation, Art. 5(1)(e) GDPR): anonymize finished cases when due.

A case that is paid, closed or withdrawn is due when its last activity (the later of
``closed_at`` and its newest thread entry) is older than the creditor's
``settings["retention"]["closed_case_days"]`` (default ``[retention] closed_case_days``). Cases
handed over to legal proceedings are never due here, and a case under legal hold is listed as
held and left alone. Due cases are anonymized with the erasure code
(:func:`hub.services.gdpr_erase.erase_in_session`): the whole person when every one of their
cases is due or already anonymized, otherwise only the due cases. A case whose newest entry is
an erasure is already done and not listed again. Each debtor is its own transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from hub.config import Settings
from hub.domain.case_state import CaseState
from hub.errors import NotFoundError, TemporaryError
from hub.services.gdpr_erase import ERASURE_KIND, ErasureReport, LegalHoldError, erase_in_session
from hub.services.gdpr_erase import vacuum as vacuum_database
from hub.storage.db import Database
from hub.storage.models import Case, Creditor, Debtor, ThreadEntry

log = logging.getLogger(__name__)

#: states whose cases are finished and may be anonymized after the retention period
RETAINED_STATES = (CaseState.PAID.value, CaseState.CLOSED.value, CaseState.WITHDRAWN.value)


@dataclass(frozen=True)
class DueCase:
    """A finished case past its retention period."""

    case_id: int
    reference: str
    creditor: str
    debtor_id: int
    state: str
    last_activity: datetime
    retention_days: int
    legal_hold: bool


@dataclass
class RetentionReport:
    """What a retention pass found and did."""

    dry_run: bool
    due: list[DueCase] = field(default_factory=list)
    erasures: list[ErasureReport] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def held(self) -> list[DueCase]:
        return [c for c in self.due if c.legal_hold]

    def summary(self) -> str:
        to_go = len(self.due) - len(self.held)
        verb = "would anonymize" if self.dry_run else "anonymized"
        done = to_go if self.dry_run else sum(len(e.case_references) for e in self.erasures)
        persons = sum(1 for e in self.erasures if e.whole_person)
        return (
            f"due={to_go} held={len(self.held)} {verb}={done} persons={persons} "
            f"refused={len(self.refused)}"
        )


def retention_days(settings: Settings, creditor_settings: dict[str, object] | None) -> int:
    """The creditor's retention period in days, or the hub's default."""
    section = (creditor_settings or {}).get("retention")
    if isinstance(section, dict):
        days = section.get("closed_case_days")
        if isinstance(days, int) and not isinstance(days, bool) and days >= 1:
            return days
        if days is not None:
            log.warning("retention: ignoring invalid closed_case_days %r", days)
    return settings.retention.closed_case_days


async def find_due(database: Database, settings: Settings, now: datetime) -> list[DueCase]:
    """Every finished case past its creditor's retention period (held ones included)."""
    async with database.sessions() as session:
        creditors = {
            cid: (code, retention_days(settings, cset))
            for cid, code, cset in (
                await session.execute(select(Creditor.id, Creditor.code, Creditor.settings))
            ).all()
        }
        cases = (await session.scalars(select(Case).where(Case.state.in_(RETAINED_STATES)))).all()
        ids = [c.id for c in cases]
        if not ids:
            return []
        activity = dict(
            (
                await session.execute(
                    select(ThreadEntry.case_id, func.max(ThreadEntry.occurred_at))
                    .where(ThreadEntry.case_id.in_(ids), ThreadEntry.kind != ERASURE_KIND)
                    .group_by(ThreadEntry.case_id)
                )
            ).all()
        )
        erased = dict(
            (
                await session.execute(
                    select(ThreadEntry.case_id, func.max(ThreadEntry.occurred_at))
                    .where(ThreadEntry.case_id.in_(ids), ThreadEntry.kind == ERASURE_KIND)
                    .group_by(ThreadEntry.case_id)
                )
            ).all()
        )
    due = []
    for case in cases:
        code, days = creditors[case.creditor_id]
        times = [t for t in (case.closed_at, activity.get(case.id)) if t is not None]
        last = _aware(max(times)) if times else case.created_at
        done = erased.get(case.id)
        if done is not None and _aware(done) >= last:
            continue
        if now - last >= timedelta(days=days):
            due.append(
                DueCase(
                    case.id, case.reference, code, case.debtor_id, case.state, last, days,
                    case.legal_hold,
                )
            )  # fmt: skip
    return sorted(due, key=lambda c: (c.creditor, c.reference))


def _aware(moment: datetime) -> datetime:
    # max() over a UTCDateTime column comes back without the type's conversion on SQLite
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def _erase_debtor(
    database: Database, debtor_id: int, due_ids: list[int], actor: str
) -> ErasureReport | None:
    async with database.transaction() as session:
        debtor = await session.get(Debtor, debtor_id)
        if debtor is None:
            raise NotFoundError(f"debtor {debtor_id} is gone")
        # a case reopened since it was found is not due any more
        due_ids = list(
            (
                await session.scalars(
                    select(Case.id).where(Case.id.in_(due_ids), Case.state.in_(RETAINED_STATES))
                )
            ).all()
        )
        if not due_ids:
            return None
        all_ids = set(
            (await session.scalars(select(Case.id).where(Case.debtor_id == debtor_id))).all()
        )
        erased_ids = set(
            (
                await session.scalars(
                    select(ThreadEntry.case_id).where(
                        ThreadEntry.case_id.in_(all_ids), ThreadEntry.kind == ERASURE_KIND
                    )
                )
            ).all()
        )
        whole = all_ids <= set(due_ids) | erased_ids and debtor.erased_at is None
        return await erase_in_session(
            session,
            debtor,
            case_ids=None if whole else due_ids,
            actor=actor,
            reason="retention period over",
            dry_run=False,
            retention=True,
        )


async def run_retention_pass(
    database: Database,
    settings: Settings,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    actor: str = "worker:retention",
) -> RetentionReport:
    """Find the due cases and, unless ``dry_run``, anonymize them debtor by debtor."""
    moment = now or datetime.now(UTC)
    report = RetentionReport(dry_run=dry_run, due=await find_due(database, settings, moment))
    if dry_run:
        return report
    by_debtor: dict[int, list[int]] = {}
    for case in report.due:
        if not case.legal_hold:
            by_debtor.setdefault(case.debtor_id, []).append(case.case_id)
    for debtor_id, case_ids in sorted(by_debtor.items()):
        try:
            erased = await _erase_debtor(database, debtor_id, case_ids, actor)
        except (LegalHoldError, NotFoundError) as exc:  # held or gone since we looked
            report.refused.append(str(exc))
            continue
        if erased is not None:
            report.erasures.append(erased)
    if report.erasures:
        await vacuum_database(database)
    log.info("retention: %s", report.summary())
    return report


async def retention_once(settings: Settings, database: Database, worker_id: str) -> str:
    """One pass of the worker's ``retention`` loop: the summary line."""
    report = await run_retention_pass(database, settings, dry_run=settings.retention.dry_run)
    return report.summary()


async def run_retention(
    settings: Settings, database: Database, stop: asyncio.Event, worker_id: str
) -> None:
    """Run a retention pass every ``retention.interval_seconds`` (daily) until ``stop``."""
    interval = settings.retention.interval_seconds
    log.info("retention %s: started (every %.0fs)", worker_id, interval)
    while not stop.is_set():
        try:
            await retention_once(settings, database, worker_id)
        except (SQLAlchemyError, OSError, TemporaryError) as exc:
            log.error(
                "retention: pass failed (%s), retrying in %.0fs", type(exc).__name__, interval
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
    log.info("retention %s: stopped", worker_id)
