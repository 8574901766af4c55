"""Import a payment file: match every payment to its case by reference, then record it.

Matching never guesses: the stated reference must equal exactly one case's reference (within
``--creditor`` when given); failing that, exactly one case reference must appear as a word of
the remittance text. No match, or more than one, leaves the payment unmatched: it is listed for
a person and not stored, so importing the file again once the case exists records it then.
Each payment is recorded in a transaction of its own through
:func:`hub.services.payments.record_payment`; a payment already recorded (same external id) is
counted as a duplicate, so importing a statement twice changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hub.domain.case_state import CaseState
from hub.errors import UserError
from hub.services.payment_files import FileProblem, ParsedPayments, PaymentRow
from hub.services.payments import PaymentResult, find_payment, record_payment
from hub.storage.db import Database
from hub.storage.models import Case, Creditor

#: the words of a remittance text that could be a case reference
_WORD = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._/-]*[A-Za-z0-9])?")
MAX_WORDS = 200


@dataclass(frozen=True)
class Match:
    case_id: int | None
    how: str  # "reference" | "text" | "none" | "ambiguous"


@dataclass
class PaymentImportReport:
    total: int = 0
    recorded: int = 0
    duplicates: int = 0
    paid_cases: int = 0
    errors: list[FileProblem] = field(default_factory=list)
    ignored: list[FileProblem] = field(default_factory=list)
    unmatched: list[FileProblem] = field(default_factory=list)
    overpaid: list[FileProblem] = field(default_factory=list)
    dry_run: bool = False

    def summary(self) -> str:
        return (
            f"payments: {self.total} read, {self.recorded} "
            f"{'to record' if self.dry_run else 'recorded'}, "
            f"{self.duplicates} already recorded, {len(self.unmatched)} unmatched, "
            f"{len(self.errors)} invalid, {len(self.ignored)} ignored, "
            f"{self.paid_cases} case(s) paid in full"
        )


class _Matcher:
    def __init__(self, session: AsyncSession, creditor_id: int | None) -> None:
        self.session = session
        self.creditor_id = creditor_id

    async def _cases(self, references: list[str]) -> list[tuple[int, str]]:
        stmt = select(Case.id, Case.reference).where(Case.reference.in_(references))
        if self.creditor_id is not None:
            stmt = stmt.where(Case.creditor_id == self.creditor_id)
        return [(int(i), str(r)) for i, r in (await self.session.execute(stmt)).all()]

    async def match(self, row: PaymentRow) -> Match:
        if row.reference:
            found = await self._cases([row.reference])
            if len(found) == 1:
                return Match(found[0][0], "reference")
            if len(found) > 1:
                return Match(None, "ambiguous")
        words = list(
            dict.fromkeys(_WORD.findall(" ".join(filter(None, [row.reference, row.text]))))
        )
        if not words:
            return Match(None, "none")
        found = await self._cases(words[:MAX_WORDS])
        ids = {case_id for case_id, _ in found}
        if len(ids) == 1:
            return Match(ids.pop(), "text")
        return Match(None, "ambiguous" if ids else "none")


async def _creditor_id(database: Database, code: str | None) -> int | None:
    if code is None:
        return None
    async with database.sessions() as session:
        found = await session.scalar(select(Creditor.id).where(Creditor.code == code))
    if found is None:
        raise UserError(f"no creditor {code!r}")
    return int(found)


def _describe(row: PaymentRow) -> str:
    return f"{row.amount} {row.currency} booked {row.booked_on.isoformat()}, id {row.external_id}"


async def import_payments(
    database: Database,
    parsed: ParsedPayments,
    *,
    source: str,
    actor: str,
    now: datetime,
    creditor_code: str | None = None,
    dry_run: bool = False,
    progress: Callable[[int], object] | None = None,
) -> PaymentImportReport:
    """Match and record every valid payment of ``parsed`` (see the module's description)."""
    report = PaymentImportReport(
        total=len(parsed.rows) + len(parsed.errors),
        errors=list(parsed.errors),
        ignored=list(parsed.ignored),
        dry_run=dry_run,
    )
    creditor_id = await _creditor_id(database, creditor_code)
    for row in parsed.rows:
        # a dry run only reads: no transaction to commit
        opened = database.sessions() if dry_run else database.transaction()
        try:
            async with opened as session:
                if await find_payment(session, row.external_id) is not None:
                    report.duplicates += 1
                else:
                    await _one(session, row, report, creditor_id, source, actor, now, dry_run)
        except IntegrityError:
            # another import recorded the same external id meanwhile (for another case: the
            # case lock did not serialise us): the unique constraint kept it single
            report.duplicates += 1
        if progress is not None:
            progress(1)
    return report


async def _one(
    session: AsyncSession,
    row: PaymentRow,
    report: PaymentImportReport,
    creditor_id: int | None,
    source: str,
    actor: str,
    now: datetime,
    dry_run: bool,
) -> None:
    match = await _Matcher(session, creditor_id).match(row)
    if match.case_id is None:
        why = "several cases match" if match.how == "ambiguous" else "no case matches"
        report.unmatched.append(FileProblem(row.where, f"{why}: {_describe(row)}"))
        return
    if dry_run:
        report.recorded += 1
        return
    try:
        outcome = await record_payment(
            session,
            case_id=match.case_id,
            amount=row.amount,
            currency=row.currency,
            booked_at=datetime.combine(row.booked_on, time(0), tzinfo=UTC),
            source=source,
            external_id=row.external_id,
            reference_text=row.text or row.reference,
            actor=actor,
            now=now,
        )
    except UserError as exc:
        report.errors.append(FileProblem(row.where, str(exc)))
        return
    if outcome.result is PaymentResult.DUPLICATE:
        report.duplicates += 1
        return
    report.recorded += 1
    if outcome.to_state is CaseState.PAID and outcome.from_state is not CaseState.PAID:
        report.paid_cases += 1
    if outcome.overpaid > Decimal("0"):
        report.overpaid.append(
            FileProblem(row.where, f"{outcome.overpaid} {row.currency} more than was open")
        )
