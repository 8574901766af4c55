"""Everything held about one person as a ZIP (``hub gdpr export``): the right of access.

The archive holds ``person.json`` (the debtor's personal data, addresses, key fingerprints),
``cases.json`` (each case with amounts, states, plans, payments, tasks), ``threads/<ref>.json``
(every thread entry with subject, body, facts, attachments' names and classifications),
``originals/`` (the raw mail of every entry, inbound message, quarantined copy and outbox row,
and every attachment under a safe file name), ``processing.json`` (the records of processing)
and ``README.txt``. Names inside the archive are built from ids and sanitised names only, so a
hostile attachment name cannot escape the archive (no ``/``, ``\\``, ``..`` or control
characters). The file is written with mode 0600 and the export is audited (who, when, counts,
the archive's SHA-256; no personal data). What each row becomes is :mod:`hub.services.gdpr_rows`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from hub.security import audit
from hub.services.gdpr_archive import README, Archive, safe_name, to_json, write_zip
from hub.services.gdpr_rows import (
    case_record,
    classification_record,
    delivery_record,
    person_record,
    understanding,
)
from hub.services.gdpr_scope import Scope, collect_scope, find_subject
from hub.services.processing_records import records_for_case
from hub.storage.db import Database
from hub.storage.models import (
    Case,
    Classification,
    DebtorKey,
    InboundMessage,
    OutboxMessage,
    QuarantinedMessage,
    ThreadEntry,
)
from hub.storage.models_cases import CollectorTask, InstallmentPlan, Payment


@dataclass(frozen=True)
class ExportResult:
    """What ``hub gdpr export`` wrote."""

    path: Path
    debtor_id: int
    cases: int
    files: int
    size: int
    sha256: str


async def _cases(session: AsyncSession, cases: list[Case]) -> list[dict[str, Any]]:
    ids = [c.id for c in cases]
    plans = (
        await session.scalars(
            select(InstallmentPlan)
            .where(InstallmentPlan.case_id.in_(ids))
            .options(selectinload(InstallmentPlan.installments))
            .order_by(InstallmentPlan.id)
        )
    ).all()
    payments = (
        await session.scalars(select(Payment).where(Payment.case_id.in_(ids)).order_by(Payment.id))
    ).all()
    tasks = (
        await session.scalars(
            select(CollectorTask).where(CollectorTask.case_id.in_(ids)).order_by(CollectorTask.id)
        )
    ).all()
    return [case_record(c, plans, payments, tasks) for c in cases]


async def _thread(
    session: AsyncSession, case: Case, scope: Scope, archive: Archive
) -> dict[str, Any]:
    folder = f"originals/{safe_name(case.reference, f'case-{case.id}')}"
    entries = (
        await session.scalars(
            select(ThreadEntry)
            .where(ThreadEntry.case_id == case.id)
            .options(selectinload(ThreadEntry.attachments))
            .order_by(ThreadEntry.seq)
        )
    ).all()
    ids = [e.id for e in entries]
    classes = (
        await session.scalars(
            select(Classification)
            .where(Classification.thread_entry_id.in_(ids))
            .order_by(Classification.id)
        )
    ).all()
    inbound = (
        await session.scalars(
            select(InboundMessage)
            .where(
                InboundMessage.id.in_(scope.inbound_ids), InboundMessage.thread_entry_id.in_(ids)
            )
            .order_by(InboundMessage.id)
        )
    ).all()
    outbox = (
        await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.id.in_(scope.outbox_ids), OutboxMessage.case_id == case.id)
            .order_by(OutboxMessage.id)
        )
    ).all()
    items = []
    for e in entries:
        item: dict[str, Any] = {
            "seq": e.seq,
            "kind": e.kind,
            "actor": e.actor,
            "occurred_at": e.occurred_at,
            "message_id": e.message_id,
            "internal": e.internal,
            "subject": e.subject,
            "body": e.body,
            "facts": e.meta,
            "classifications": [
                classification_record(c) for c in classes if c.thread_entry_id == e.id
            ],
            "attachments": [],
            "originals": [],
        }
        if e.raw_message:
            item["originals"].append(
                archive.add(f"{folder}/{e.seq:04d}-{safe_name(e.kind)}.eml", e.raw_message)
            )
        for a in e.attachments:
            stored = archive.add(
                f"{folder}/{e.seq:04d}-attachments/{safe_name(a.filename, f'attachment-{a.id}')}",
                a.content,
            )
            item["attachments"].append(
                {
                    "filename": a.filename,
                    "content_type": a.content_type,
                    "size": a.size,
                    "sha256": a.sha256,
                    "file": stored,
                }
            )
        for row in inbound:
            if row.thread_entry_id == e.id and row.raw:
                item["originals"].append(
                    archive.add(f"{folder}/{e.seq:04d}-received-{row.id}.eml", row.raw)
                )
                item["routing"] = row.route
                item.update(understanding(row))
        for out in outbox:
            if out.thread_entry_id == e.id:
                item.setdefault("delivery", []).append(delivery_record(out))
                if out.message:
                    item["originals"].append(
                        archive.add(f"{folder}/{e.seq:04d}-sent-{out.id}.eml", out.message)
                    )
        items.append(item)
    for out in outbox:
        if out.thread_entry_id not in ids and out.message:
            archive.add(f"{folder}/outbox-{out.id}.eml", out.message)
    return {"reference": case.reference, "entries": items}


async def _unrouted(session: AsyncSession, scope: Scope, archive: Archive) -> None:
    """Mail from the person that never reached a case (triage, quarantine)."""
    rows = (
        await session.scalars(
            select(InboundMessage).where(
                InboundMessage.id.in_(scope.inbound_ids), InboundMessage.thread_entry_id.is_(None)
            )
        )
    ).all()
    for row in rows:
        if row.raw:
            archive.add(f"originals/unrouted/inbound-{row.id}.eml", row.raw)
        found = understanding(row)
        if found or row.route:
            archive.add(
                f"originals/unrouted/inbound-{row.id}.json",
                to_json({"routing": row.route, **found}),
            )
    quarantined = (
        await session.scalars(
            select(QuarantinedMessage).where(QuarantinedMessage.id.in_(scope.quarantine_ids))
        )
    ).all()
    for q in quarantined:
        if q.raw:
            archive.add(f"originals/quarantine/quarantine-{q.id}.eml", q.raw)
        if q.detail:
            archive.add(f"originals/quarantine/quarantine-{q.id}.txt", q.detail.encode())


async def export_person(
    database: Database,
    who: str,
    out: Path,
    *,
    creditor_code: str | None,
    actor: str,
    hub_name: str = "the hub",
) -> ExportResult:
    """Write everything about the person named by ``who`` to the ZIP file ``out``."""
    archive = Archive()
    async with database.transaction() as session:
        debtor = await find_subject(session, who, creditor_code, database.keyring)
        scope = await collect_scope(session, debtor)
        keys = list(
            (
                await session.scalars(
                    select(DebtorKey).where(DebtorKey.debtor_id == debtor.id).order_by(DebtorKey.id)
                )
            ).all()
        )
        cases = list(
            (
                await session.scalars(
                    select(Case).where(Case.id.in_(scope.case_ids)).order_by(Case.id)
                )
            ).all()
        )
        archive.add("person.json", to_json(person_record(debtor, scope.creditor_code, keys)))
        archive.add("cases.json", to_json(await _cases(session, cases)))
        processing = {}
        for case in cases:
            thread = await _thread(session, case, scope, archive)
            archive.add(
                f"threads/{safe_name(case.reference, f'case-{case.id}')}.json", to_json(thread)
            )
            processing[case.reference] = [
                r.as_json() for r in await records_for_case(session, case)
            ]
        await _unrouted(session, scope, archive)
        archive.add("processing.json", to_json(processing))
        now = datetime.now(UTC)
        archive.add(
            "README.txt",
            README.format(hub=hub_name, when=now.isoformat(timespec="seconds")).encode(),
        )
        size, digest = await asyncio.to_thread(write_zip, out, archive.files)
        await audit.record(
            session,
            actor,
            "gdpr.export",
            "debtor",
            debtor.id,
            None,
            {"cases": len(cases), "files": len(archive.files), "bytes": size, "sha256": digest},
        )
    return ExportResult(out, debtor.id, len(cases), len(archive.files), size, digest)
