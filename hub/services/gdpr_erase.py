"""Erasure (Art. 17 GDPR, ``hub gdpr erase``): anonymize a person, keep what the claim needs.

Kept: the cases' references, amounts, currency, dates, states and levels; payments (amount,
date, the bank's reference), plans and their schedules, tasks; and the facts of what was sent
and received when (thread entries' kind, actor, time, Message-ID, protection, level, state
changes; outbox rows' Message-IDs and states; classifications' intents). Overwritten or removed:
the debtor's name (and its hash), postal data, phone, email addresses (and their hashes), keys,
the case descriptions, every subject, body and raw message, attachments, the text fields of
classifications (spans), inbound raw mail and its routing details, quarantined copies, outbox
bytes and recipients, payments' remittance texts, and any JSON fact that names the person.

A case under ``legal_hold`` refuses the whole erasure (:class:`LegalHoldError` names the case)
and nothing changes. Each erased case gets an ``erasure`` thread entry, and one audit entry is
written (ids, counts and the reason only); the audit log itself is never touched, so
``hub audit verify`` still passes.

What the database engine keeps: SQLite keeps overwritten pages in its free list and in the WAL
until they are reused, so :func:`vacuum` (``VACUUM`` then ``wal_checkpoint(TRUNCATE)``) runs
after every erasure. PostgreSQL keeps the old row versions as dead tuples until (auto)vacuum
prunes them, and in its WAL segments until they are recycled; all of them are ciphertext under
the at-rest keys, so rotating the at-rest key (``hub keys rotate-at-rest``) and later retiring
the old key makes them unreadable for good. Backups keep what they hold until they expire.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.errors import UserError
from hub.security import audit
from hub.services.gdpr_scope import Scope, collect_scope, find_subject
from hub.services.thread import append_entry, lock_case
from hub.storage.db import Database
from hub.storage.models import (
    Attachment,
    Case,
    Classification,
    Debtor,
    DebtorEmail,
    DebtorKey,
    InboundMessage,
    OutboxMessage,
    QuarantinedMessage,
    ThreadEntry,
)
from hub.storage.models_cases import CollectorTask, InstallmentPlan, Payment
from hub.storage.models_web import PortalCode, PortalSession
from hub.storage.types import EncryptedBytes, EncryptedText

log = logging.getLogger(__name__)

ERASED = "[erased]"
ERASURE_KIND = "erasure"
#: JSON keys whose values name or quote the person, wherever they appear
PERSONAL_KEYS = frozenset(
    {
        "address",
        "addresses",
        "answer",
        "body",
        "city",
        "detail",
        "email",
        "evidence",
        "excerpt",
        "key_fingerprint",
        "name",
        "phone",
        "postal_code",
        "proposed_address",
        "quote",
        "quoted",
        "redacted",
        "sender",
        "span",
        "spans",
        "street",
        "subject",
        "text",
    }
)
_EMAIL_LIKE = re.compile(r"[^\s@]+@[^\s@]+")
_MESSAGE_ID = re.compile(r"<[^<>\s@]+@[^<>\s@]+>")
_WORDS = re.compile(r"\w+", re.UNICODE)


class LegalHoldError(UserError):
    """A case of the person is under legal hold: nothing was erased."""


@dataclass
class ErasureReport:
    """What an erasure changed (or, on a dry run, would change)."""

    debtor_id: int
    case_references: list[str]
    whole_person: bool
    dry_run: bool
    rows: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        verb = "would anonymize" if self.dry_run else "anonymized"
        who = "debtor and " if self.whole_person else ""
        counts = ", ".join(f"{t}={n}" for t, n in sorted(self.rows.items()) if n)
        return (
            f"{verb} {who}{len(self.case_references)} case(s) of debtor {self.debtor_id}"
            f" ({', '.join(self.case_references) or 'no cases'}): {counts or 'nothing'}"
        )


def personal_needles(values: Iterable[str | None]) -> list[str]:
    """Lower-cased strings whose presence marks a text as the person's: whole values, their
    words of four letters or more, and each address's local part and domain."""
    found: set[str] = set()
    for value in values:
        if not value:
            continue
        text = value.strip().lower()
        if len(text) >= 3:
            found.add(text)
        for word in _WORDS.findall(text):
            if len(word) >= 4:
                found.add(word)
        if "@" in text:
            local, _, domain = text.rpartition("@")
            found.update(p for p in (local, domain) if len(p) >= 3)
    return sorted(found, key=len, reverse=True)


def scrub(value: Any, needles: list[str]) -> Any:
    """``value`` (JSON data) without personal keys and with any string naming the person
    (or holding an address) replaced by :data:`ERASED`."""
    if isinstance(value, dict):
        return {
            k: scrub(v, needles) for k, v in value.items() if str(k).lower() not in PERSONAL_KEYS
        }
    if isinstance(value, list):
        return [scrub(v, needles) for v in value]
    if isinstance(value, str):
        lowered = value.lower()
        if any(n in lowered for n in needles):
            return ERASED
        # a Message-ID (<id@host>) is a fact of what was sent; any other address is not kept
        if _EMAIL_LIKE.search(value) and not _MESSAGE_ID.fullmatch(value.strip()):
            return ERASED
    return value


async def _check_hold(session: AsyncSession, case_ids: list[int]) -> None:
    if not case_ids:
        return
    held = (
        await session.scalars(
            select(Case.reference).where(Case.id.in_(case_ids), Case.legal_hold.is_(True))
        )
    ).all()
    if held:
        raise LegalHoldError(
            f"case {', '.join(sorted(held))} is under legal hold: the data is still needed to "
            "establish, exercise or defend a legal claim (Art. 17(3)(e) GDPR); lift the hold "
            "first. Nothing was erased."
        )


async def _needles(session: AsyncSession, debtor: Debtor, scope: Scope) -> list[str]:
    descriptions = (
        await session.scalars(select(Case.description).where(Case.id.in_(scope.case_ids)))
    ).all()
    values = [debtor.name, debtor.street, debtor.postal_code, debtor.city, debtor.phone]
    return personal_needles([*values, *scope.addresses, *descriptions])


def blank_row(row: Any, needles: list[str], keep: frozenset[str] = frozenset()) -> None:
    """Overwrite every encrypted column of ``row`` (None, or an empty/erased value where the
    column may not be NULL) and scrub every JSON column; columns in ``keep`` stay as they are.

    Walking the table's columns, not a list of names, covers columns added later."""
    for col in row.__table__.columns:
        name = col.key
        if name in keep:
            continue
        if isinstance(col.type, EncryptedBytes | EncryptedText):
            if col.nullable:
                setattr(row, name, None)
            else:
                setattr(row, name, b"" if isinstance(col.type, EncryptedBytes) else ERASED)
        elif isinstance(col.type, JSON):
            value = getattr(row, name)
            if value is not None:
                setattr(row, name, scrub(value, needles))


async def _rows(session: AsyncSession, model: Any, column: Any, ids: list[int]) -> list[Any]:
    if not ids:
        return []
    return list((await session.scalars(select(model).where(column.in_(ids)))).all())


async def _anonymize_content(
    session: AsyncSession, scope: Scope, needles: list[str], report: ErasureReport
) -> None:
    """Overwrite the personal content of the scope's rows (cases, threads, mail, money)."""
    rows = report.rows
    result = await session.execute(
        delete(Attachment).where(Attachment.thread_entry_id.in_(scope.entry_ids))
    )
    rows["attachments"] = result.rowcount or 0  # type: ignore[attr-defined]
    # the person's way into the portal goes with their data
    for model in (PortalSession, PortalCode):
        await session.execute(delete(model).where(model.case_id.in_(scope.case_ids)))
    targets: list[tuple[str, Any, Any, list[int]]] = [
        ("thread_entries", ThreadEntry, ThreadEntry.id, scope.entry_ids),
        ("classifications", Classification, Classification.thread_entry_id, scope.entry_ids),
        ("inbound_messages", InboundMessage, InboundMessage.id, scope.inbound_ids),
        ("quarantine", QuarantinedMessage, QuarantinedMessage.id, scope.quarantine_ids),
        ("outbox", OutboxMessage, OutboxMessage.id, scope.outbox_ids),
        ("cases", Case, Case.id, scope.case_ids),
        ("payments", Payment, Payment.case_id, scope.case_ids),
        ("installment_plans", InstallmentPlan, InstallmentPlan.case_id, scope.case_ids),
        ("collector_tasks", CollectorTask, CollectorTask.case_id, scope.case_ids),
    ]
    for table, model, column, ids in targets:
        found = await _rows(session, model, column, ids)
        for row in found:
            blank_row(row, needles)
        rows[table] = len(found)
    for q in await _rows(session, QuarantinedMessage, QuarantinedMessage.id, scope.quarantine_ids):
        q.reason = scrub(q.reason, needles)
    for t in await _rows(session, CollectorTask, CollectorTask.case_id, scope.case_ids):
        t.reason = scrub(t.reason, needles)
    for o in await _rows(session, OutboxMessage, OutboxMessage.id, scope.outbox_ids):
        o.recipient_domain = "erased"
        if o.state in ("pending", "sending"):
            # never send what is left of it
            o.state, o.last_error = "failed", "not sent: the recipient's data was erased"
        elif o.last_error is not None:
            o.last_error = scrub(o.last_error, needles)


async def _anonymize_person(
    session: AsyncSession, debtor: Debtor, now: datetime, report: ErasureReport
) -> None:
    debtor.name, debtor.name_hash = ERASED, "erased"
    debtor.street = debtor.postal_code = debtor.city = debtor.phone = debtor.country = None
    debtor.erased_at = now
    report.rows["debtors"] = 1
    result = await session.execute(delete(DebtorEmail).where(DebtorEmail.debtor_id == debtor.id))
    report.rows["debtor_emails"] = result.rowcount or 0  # type: ignore[attr-defined]
    result = await session.execute(delete(DebtorKey).where(DebtorKey.debtor_id == debtor.id))
    report.rows["debtor_keys"] = result.rowcount or 0  # type: ignore[attr-defined]


async def _count(session: AsyncSession, scope: Scope, report: ErasureReport) -> None:
    """A dry run's numbers: the rows that would be touched."""
    report.rows.update(
        cases=len(scope.case_ids),
        thread_entries=len(scope.entry_ids),
        inbound_messages=len(scope.inbound_ids),
        quarantine=len(scope.quarantine_ids),
        outbox=len(scope.outbox_ids),
    )
    if report.whole_person:
        emails = (
            await session.scalars(
                select(DebtorEmail.id).where(DebtorEmail.debtor_id == scope.debtor_id)
            )
        ).all()
        keys = (
            await session.scalars(
                select(DebtorKey.id).where(DebtorKey.debtor_id == scope.debtor_id)
            )
        ).all()
        report.rows.update(debtors=1, debtor_emails=len(emails), debtor_keys=len(keys))


async def erase_in_session(
    session: AsyncSession,
    debtor: Debtor,
    *,
    case_ids: list[int] | None,
    actor: str,
    reason: str,
    dry_run: bool,
    retention: bool = False,
    now: datetime | None = None,
) -> ErasureReport:
    """Anonymize ``debtor`` (``case_ids`` None) or only those of their cases, in the caller's
    transaction. Raises :class:`LegalHoldError` before changing anything if a case is held."""
    moment = now or datetime.now(UTC)
    scope = await collect_scope(session, debtor, case_ids)
    await _check_hold(session, scope.case_ids)
    references = sorted(
        (await session.scalars(select(Case.reference).where(Case.id.in_(scope.case_ids)))).all()
    )
    report = ErasureReport(debtor.id, references, case_ids is None, dry_run)
    if dry_run:
        await _count(session, scope, report)
        return report
    for case_id in scope.case_ids:
        await lock_case(session, case_id)
    needles = await _needles(session, debtor, scope)
    await _anonymize_content(session, scope, needles, report)
    if case_ids is None:
        await _anonymize_person(session, debtor, moment, report)
    label = "retention" if retention else "request"
    for case_id in scope.case_ids:
        await append_entry(
            session,
            case_id,
            kind=ERASURE_KIND,
            actor=actor,
            now=moment,
            meta={"scope": label, "whole_person": case_ids is None},
        )
    await audit.record(
        session,
        actor,
        "gdpr.retention" if retention else "gdpr.erase",
        "debtor",
        debtor.id,
        None,
        {
            "cases": scope.case_ids,
            "whole_person": case_ids is None,
            "rows": {k: v for k, v in sorted(report.rows.items()) if v},
            "reason": reason[:200],
        },
    )
    log.info("erasure: debtor %s, %d case(s), %s", debtor.id, len(scope.case_ids), label)
    return report


async def vacuum(database: Database) -> str:
    """Drop what the engine still keeps of overwritten values, where it can be done now."""
    if database.is_postgres:
        # dead tuples go with autovacuum; a manual VACUUM needs no exclusive lock
        return "PostgreSQL: dead row versions are pruned by autovacuum (or VACUUM)"
    async with database.engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.exec_driver_sql("VACUUM")
        await auto.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return "SQLite: VACUUM and WAL checkpoint done"


async def erase_person(
    database: Database,
    who: str,
    *,
    creditor_code: str | None,
    actor: str,
    reason: str,
    dry_run: bool = False,
) -> ErasureReport:
    """Anonymize the person named by ``who`` (debtor ref, case reference or email address)."""
    async with database.transaction() as session:
        debtor = await find_subject(session, who, creditor_code, database.keyring)
        if debtor.erased_at is not None and not dry_run:
            log.info("erasure: debtor %s was erased before; erasing again", debtor.id)
        report = await erase_in_session(
            session, debtor, case_ids=None, actor=actor, reason=reason, dry_run=dry_run
        )
    if not dry_run:
        await vacuum(database)
    return report
