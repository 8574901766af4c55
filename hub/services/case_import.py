"""Importing the cases a creditor hands over: validated rows into debtors, cases and threads.

:func:`import_cases` takes a :class:`~hub.services.csv_rows.ParsedFile` (validation is pure
and lives in :mod:`hub.services.csv_rows` and :mod:`hub.services.case_rows`) and stores it:

* a file with any invalid row stores nothing, unless ``skip_invalid`` is given;
* it is idempotent on (creditor, reference): a case already stored is skipped and counted as
  already present, or reported as a conflict when the stored case differs from the row; the
  stored case is never changed by an import;
* debtors are per creditor, found by (creditor, debtor_ref); an existing debtor is reused and
  not changed (differences are reported as notes);
* each new case's thread starts with an ``imported`` entry naming the file and line.

Rows are written in batches with SQLAlchemy's bulk INSERT … RETURNING, one transaction per
batch: an interrupted import leaves whole batches behind, and running the same file again
completes it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from hub.crypto.at_rest import Keyring
from hub.domain.case_state import CaseState
from hub.services.case_rows import CaseRow, RowError, normalize_name
from hub.services.creditors import creditor_ids_by_code
from hub.services.csv_rows import COLUMNS, ParsedFile
from hub.storage.db import Database
from hub.storage.models import Case, Debtor, DebtorEmail, ThreadEntry

log = logging.getLogger(__name__)

ACTOR = "system:import"
ENTRY_KIND = "imported"
#: Parameters per IN (...) lookup: well under SQLite's and PostgreSQL's limits.
#: (Inserts use ``render_nulls``: without it the ORM omits None columns and splits a batch
#: wherever the set of None columns changes, often into single-row statements.)
LOOKUP_CHUNK = 1000


@dataclass(frozen=True)
class Conflict:
    """A row whose case (or debtor) is already stored with different data; stored data kept."""

    line: int
    reference: str
    fields: tuple[str, ...]
    subject: str = "case"

    def __str__(self) -> str:
        fields = ", ".join(self.fields)
        if self.subject == "debtor":
            return (
                f"line {self.line}: case {self.reference} belongs to a debtor already stored "
                f"with a different {fields}; the stored debtor is kept"
            )
        return (
            f"line {self.line}: case {self.reference} already stored with a different "
            f"{fields}; not changed"
        )


@dataclass
class ImportReport:
    source: str
    total: int
    dry_run: bool = False
    imported: int = 0
    already_present: int = 0
    conflicts: list[Conflict] = field(default_factory=list)
    #: new cases of debtors already stored whose stored data differ from the row
    debtor_notes: list[Conflict] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    debtors_created: int = 0

    @property
    def invalid(self) -> int:
        return len({error.line for error in self.errors})

    @property
    def aborted(self) -> bool:
        """True when errors stopped the import before anything was stored."""
        return bool(self.errors) and self.imported == 0

    def summary(self) -> str:
        verb = "would import" if self.dry_run else "imported"
        return (
            f"{self.source}: {self.total} rows; {verb} {self.imported}, "
            f"already present {self.already_present}, conflicts {len(self.conflicts)}, "
            f"invalid {self.invalid}"
        )


def name_hash(keyring: Keyring, name: str) -> str:
    """The keyed hash a debtor's name is found by (Debtor.name_hash)."""
    return keyring.lookup_hash("name:" + normalize_name(name))


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


@dataclass
class _Importer:
    session: AsyncSession
    keyring: Keyring
    source: str
    report: ImportReport
    #: (creditor id, debtor_ref) -> debtor id, for debtors stored or created so far
    debtor_ids: dict[tuple[int, str], int]

    async def run(self, rows: Sequence[CaseRow], creditor_ids: dict[str, int]) -> None:
        by_creditor: dict[int, list[CaseRow]] = defaultdict(list)
        for row in rows:
            by_creditor[creditor_ids[row.creditor]].append(row)
        new: list[tuple[int, CaseRow]] = []
        for creditor_id, group in by_creditor.items():
            fresh = await self._skip_present(creditor_id, group)
            new.extend((creditor_id, row) for row in fresh)
        if not new:
            return
        await self._find_debtors(new)
        if self.report.dry_run:
            self.report.imported += len(new)
            return
        await self._insert(new)

    async def _skip_present(self, creditor_id: int, rows: list[CaseRow]) -> list[CaseRow]:
        """Rows whose case is not stored yet; the others are counted or reported."""
        stored: dict[str, Any] = {}
        for chunk in _chunks([row.reference for row in rows], LOOKUP_CHUNK):
            result = await self.session.execute(
                select(
                    Case.reference,
                    Case.claim_amount,
                    Case.currency,
                    Case.due_date,
                    Case.description,
                    Debtor.external_ref,
                )
                .join(Debtor, Debtor.id == Case.debtor_id)
                .where(Case.creditor_id == creditor_id, Case.reference.in_(chunk))
            )
            stored.update({found.reference: found for found in result})
        fresh: list[CaseRow] = []
        for row in rows:
            found = stored.get(row.reference)
            if found is None:
                fresh.append(row)
                continue
            differing = tuple(
                name
                for name, mine, theirs in (
                    ("debtor_ref", row.debtor_ref, found.external_ref),
                    ("amount", row.amount, found.claim_amount),
                    ("currency", row.currency, found.currency),
                    ("due_date", row.due_date, found.due_date),
                    ("description", row.description or None, found.description or None),
                )
                if mine != theirs
            )
            if differing:
                self.report.conflicts.append(Conflict(row.line, row.reference, differing))
            else:
                self.report.already_present += 1
        return fresh

    async def _find_debtors(self, rows: list[tuple[int, CaseRow]]) -> None:
        """Look up the stored debtors these rows name, and note where they differ."""
        wanted: dict[int, set[str]] = defaultdict(set)
        for creditor_id, row in rows:
            if (creditor_id, row.debtor_ref) not in self.debtor_ids:
                wanted[creditor_id].add(row.debtor_ref)
        found: dict[tuple[int, str], tuple[int, str]] = {}
        for creditor_id, refs in wanted.items():
            for chunk in _chunks(sorted(refs), LOOKUP_CHUNK):
                result = await self.session.execute(
                    select(Debtor.external_ref, Debtor.id, Debtor.name_hash).where(
                        Debtor.creditor_id == creditor_id, Debtor.external_ref.in_(chunk)
                    )
                )
                for ref, debtor_id, stored_hash in result:
                    found[(creditor_id, ref)] = (debtor_id, stored_hash)
        if not found:
            return
        emails: dict[int, set[str]] = defaultdict(set)
        for chunk in _chunks([debtor_id for debtor_id, _ in found.values()], LOOKUP_CHUNK):
            email_rows = await self.session.execute(
                select(DebtorEmail.debtor_id, DebtorEmail.address_hash).where(
                    DebtorEmail.debtor_id.in_(chunk)
                )
            )
            for debtor_id, address_hash in email_rows:
                emails[debtor_id].add(address_hash)
        for creditor_id, row in rows:
            hit = found.get((creditor_id, row.debtor_ref))
            if hit is None:
                continue
            debtor_id, stored_hash = hit
            differing = []
            if stored_hash != name_hash(self.keyring, row.name):
                differing.append("name")
            if not {self.keyring.email_hash(a) for a in row.emails} <= emails[debtor_id]:
                differing.append("email")
            if differing:
                self.report.debtor_notes.append(
                    Conflict(row.line, row.reference, tuple(differing), subject="debtor")
                )
        self.debtor_ids.update({key: debtor_id for key, (debtor_id, _) in found.items()})

    async def _ids_of(
        self,
        model: type[Debtor] | type[Case],
        column: InstrumentedAttribute[str],
        keys: list[tuple[int, str]],
    ) -> dict[tuple[int, str], int]:
        """Ids of just-inserted rows by (creditor id, unique text key), looked up in bulk.

        Bulk INSERT … RETURNING with ordered results is not batched on SQLite (an INTEGER
        PRIMARY KEY is no insert sentinel there): it ran one statement per row and spliced
        the results quadratically. Plain executemany plus an indexed lookup is far faster.
        """
        by_creditor: dict[int, list[str]] = defaultdict(list)
        for creditor_id, value in keys:
            by_creditor[creditor_id].append(value)
        ids: dict[tuple[int, str], int] = {}
        for creditor_id, values in by_creditor.items():
            for chunk in _chunks(values, LOOKUP_CHUNK):
                result = await self.session.execute(
                    select(column, model.id).where(
                        model.creditor_id == creditor_id, column.in_(chunk)
                    )
                )
                ids.update(((creditor_id, value), row_id) for value, row_id in result)
        return ids

    async def _insert(self, rows: list[tuple[int, CaseRow]]) -> None:
        keyring = self.keyring
        new_debtors: dict[tuple[int, str], CaseRow] = {}
        for creditor_id, row in rows:
            key = (creditor_id, row.debtor_ref)
            if key not in self.debtor_ids and key not in new_debtors:
                new_debtors[key] = row
        if new_debtors:
            await self.session.execute(
                insert(Debtor).execution_options(render_nulls=True),
                [
                    {
                        "creditor_id": creditor_id,
                        "external_ref": row.debtor_ref,
                        "name": row.name,
                        "name_hash": name_hash(keyring, row.name),
                        "language": row.language,
                        "timezone": row.timezone,
                        "street": row.street,
                        "postal_code": row.postal_code,
                        "city": row.city,
                        "country": row.country,
                        "phone": row.phone,
                    }
                    for (creditor_id, _), row in new_debtors.items()
                ],
            )
            self.debtor_ids.update(
                await self._ids_of(Debtor, Debtor.external_ref, list(new_debtors))
            )
            await self.session.execute(
                insert(DebtorEmail).execution_options(render_nulls=True),
                [
                    {
                        "debtor_id": self.debtor_ids[key],
                        "address": address,
                        "address_hash": keyring.email_hash(address),
                        "is_primary": position == 0,
                    }
                    for key, row in new_debtors.items()
                    for position, address in enumerate(row.emails)
                ],
            )
            self.report.debtors_created += len(new_debtors)
        await self.session.execute(
            insert(Case).execution_options(render_nulls=True),
            [
                {
                    "creditor_id": creditor_id,
                    "debtor_id": self.debtor_ids[(creditor_id, row.debtor_ref)],
                    "reference": row.reference,
                    "description": row.description,
                    "claim_amount": row.amount,
                    "currency": row.currency,
                    "due_date": row.due_date,
                    "state": CaseState.OPEN.value,
                }
                for creditor_id, row in rows
            ],
        )
        case_ids = await self._ids_of(
            Case, Case.reference, [(creditor_id, row.reference) for creditor_id, row in rows]
        )
        await self.session.execute(
            insert(ThreadEntry).execution_options(render_nulls=True),
            [
                {
                    "case_id": case_id,
                    "seq": 1,
                    "kind": ENTRY_KIND,
                    "actor": ACTOR,
                    "meta": {
                        "source": self.source,
                        "line": row.line,
                        "creditor": row.creditor,
                        "state": CaseState.OPEN.value,
                    },
                }
                for creditor_id, row in rows
                for case_id in (case_ids[(creditor_id, row.reference)],)
            ],
        )
        self.report.imported += len(rows)


async def import_cases(
    database: Database,
    parsed: ParsedFile,
    *,
    source: str,
    batch_size: int,
    skip_invalid: bool = False,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Store the valid rows of ``parsed`` (see the module docstring for the rules).

    ``source`` is the file's name as recorded in each case's first thread entry; ``progress``
    is called with the number of rows done after each batch.
    """
    report = ImportReport(source=source, total=parsed.total, dry_run=dry_run)
    errors = list(parsed.errors)
    async with database.sessions() as session:
        creditor_ids = await creditor_ids_by_code(session, {row.creditor for row in parsed.rows})
    rows: list[CaseRow] = []
    for row in parsed.rows:
        if row.creditor in creditor_ids:
            rows.append(row)
        else:
            reason = f"unknown creditor {row.creditor} (add it with: hub creditor add)"
            errors.append(RowError(row.line, "creditor", reason))
    errors.sort(key=lambda e: (e.line, COLUMNS.index(e.column) if e.column else -1))
    report.errors = errors
    if errors and not skip_invalid:
        log.info("import of %s stopped: %d invalid rows", source, report.invalid)
        return report
    debtor_ids: dict[tuple[int, str], int] = {}
    for batch in _chunks(rows, batch_size):
        async with database.transaction() as session:
            importer = _Importer(session, database.keyring, source, report, debtor_ids)
            await importer.run(batch, creditor_ids)
        if progress is not None:
            progress(len(batch))
    log.info("%s", report.summary())
    return report
