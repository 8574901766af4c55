"""The audit log for auditors: pages of entries, a CSV export and the chain's state.

Looking at the audit log is itself recorded in it.
"""

from __future__ import annotations

import csv
import io

from sqlalchemy import select

from hub.security import audit
from hub.security.audit import ChainStatus
from hub.security.roles import Principal
from hub.storage.db import Database
from hub.storage.models import AuditEntry

PAGE_SIZE = 100
CSV_COLUMNS = (
    "id",
    "at",
    "actor",
    "action",
    "object_type",
    "object_id",
    "remote_addr",
    "details",
    "prev_hash",
    "entry_hash",
)


async def audit_page(
    database: Database, principal: Principal, page: int, remote_addr: str | None
) -> tuple[list[AuditEntry], ChainStatus]:
    """Newest entries first, and whether the whole chain verifies."""
    async with database.sessions() as session:
        status = await audit.chain_status(session)
        entries = list(
            (
                await session.execute(
                    select(AuditEntry)
                    .order_by(AuditEntry.id.desc())
                    .limit(PAGE_SIZE)
                    .offset(max(page - 1, 0) * PAGE_SIZE)
                )
            ).scalars()
        )
    async with database.transaction() as session:
        await audit.record(
            session,
            principal.actor,
            "audit.read",
            "audit_log",
            None,
            remote_addr,
            {"page": page, "chain_ok": status.first_broken_id is None},
        )
    return entries, status


def _cell(value: str) -> str:
    # a cell starting with = + - @ would be run as a formula by a spreadsheet (CSV injection)
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


async def audit_csv(database: Database, principal: Principal, remote_addr: str | None) -> str:
    """The whole log in id order as CSV."""
    async with database.transaction() as session:
        await audit.record(
            session, principal.actor, "audit.export", "audit_log", None, remote_addr, {}
        )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    async with database.sessions() as session:
        result = await session.stream_scalars(select(AuditEntry).order_by(AuditEntry.id))
        async for entry in result:
            writer.writerow(
                [
                    str(entry.id),
                    entry.at.isoformat(),
                    _cell(entry.actor),
                    _cell(entry.action),
                    _cell(entry.object_type),
                    _cell(entry.object_id or ""),
                    _cell(entry.remote_addr or ""),
                    _cell(audit.canonical_json(entry.details)),
                    entry.prev_hash,
                    entry.entry_hash,
                ]
            )
    return out.getvalue()
