"""A creditor's report: its cases as CSV (state, amounts, paid, last activity), nothing internal.

The rows carry the case's own figures and the time of its latest thread entry that the creditor
may see (internal notes and drafts count for nothing, and no text of any entry is included).
Cases are read in batches in id order, so a creditor with many cases never sits in memory at
once. The download is audited.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime

from sqlalchemy import func, select

from hub.domain.installments import in_minor_units
from hub.errors import UserError
from hub.security import audit
from hub.security.roles import Principal
from hub.storage.db import Database
from hub.storage.models import Case, Creditor, ThreadEntry

BATCH = 2000
COLUMNS = (
    "creditor",
    "reference",
    "state",
    "currency",
    "claim_amount",
    "fees",
    "paid_amount",
    "balance",
    "due_date",
    "created_at",
    "closed_at",
    "last_activity",
)


async def report_creditor(database: Database, principal: Principal, code: str = "") -> int | None:
    """The creditor the report is for: the caller's own, or (staff) the one named, or all."""
    if principal.creditor_scope is not None:
        return principal.creditor_scope
    if not code.strip():
        return None
    async with database.sessions() as session:
        found = await session.scalar(select(Creditor.id).where(Creditor.code == code.upper()))
    if found is None:
        raise UserError("choose a creditor for the report")
    return int(found)


async def report_rows(
    database: Database,
    principal: Principal,
    creditor_id: int | None,
    remote_addr: str | None = None,
) -> AsyncIterator[bytes]:
    """The CSV, header first, in chunks of bytes (``creditor_id`` None: every creditor)."""
    if principal.creditor_scope is not None and creditor_id != principal.creditor_scope:
        raise UserError("a creditor user reports on its own cases only")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    last_id = 0
    total = 0
    activity: dict[int, datetime] = {}
    while True:
        async with database.sessions() as session:
            stmt = select(Case, Creditor.code).join(Creditor, Creditor.id == Case.creditor_id)
            if creditor_id is not None:
                stmt = stmt.where(Case.creditor_id == creditor_id)
            rows = (
                await session.execute(stmt.where(Case.id > last_id).order_by(Case.id).limit(BATCH))
            ).all()
            cases = [case for case, _ in rows]
            codes = {case.id: code for case, code in rows}
            if cases:
                activity = dict(
                    (
                        await session.execute(
                            select(ThreadEntry.case_id, func.max(ThreadEntry.occurred_at))
                            .where(
                                ThreadEntry.case_id.in_([c.id for c in cases]),
                                ThreadEntry.internal.is_(False),
                            )
                            .group_by(ThreadEntry.case_id)
                        )
                    ).all()
                )
        for case in cases:
            last = activity.get(case.id)
            writer.writerow(
                (
                    codes[case.id],
                    case.reference,
                    case.state,
                    case.currency,
                    in_minor_units(case.claim_amount, case.currency),
                    in_minor_units(case.fees, case.currency),
                    in_minor_units(case.paid_amount, case.currency),
                    in_minor_units(case.claim_amount + case.fees - case.paid_amount, case.currency),
                    case.due_date.isoformat(),
                    case.created_at.isoformat(),
                    case.closed_at.isoformat() if case.closed_at else "",
                    last.isoformat() if last else "",
                )
            )
        total += len(cases)
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
        if len(cases) < BATCH:
            break
        last_id = cases[-1].id
    async with database.transaction() as session:
        await audit.record(
            session,
            principal.actor,
            "case.report",
            "creditor",
            creditor_id,
            remote_addr,
            {"cases": total},
        )
