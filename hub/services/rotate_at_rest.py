"""Re-seal every encrypted column value under the active at-rest key (``hub keys rotate-at-rest``).

The rotation works at the SQL core level on raw bytes, so it needs no knowledge of the models:
for each ``(table, column)`` of :func:`hub.storage.models.encrypted_columns` it reads the stored
ciphertext, opens it with the keyring (the column type's ``purpose`` is the associated data),
seals it again under the active key and writes it back by primary key.

Only values whose key-id prefix is not the active key's are selected, and each batch is its own
transaction, so a rotation that crashes half-way is resumed by simply running it again; a second
run after a complete one finds nothing to do. The UPDATE also matches the old ciphertext, so a
value that the application rewrote in the meantime is left alone (it was sealed under the
active key by then).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import (
    BigInteger,
    LargeBinary,
    Table,
    and_,
    bindparam,
    column,
    func,
    literal,
    select,
    update,
)
from sqlalchemy import table as table_clause
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.crypto.at_rest import FORMAT_VERSION, Keyring
from hub.errors import AtRestKeyError
from hub.storage.db import Database
from hub.storage.models import Base, encrypted_columns
from hub.storage.types import EncryptedBytes, EncryptedText

log = logging.getLogger(__name__)

DEFAULT_BATCH = 500


@dataclass
class ColumnRotation:
    """What a rotation did (or, on a dry run, would do) to one encrypted column."""

    table: str
    column: str
    #: values re-sealed under the active key (on a dry run: values that would be)
    resealed: int = 0
    #: values skipped because the application changed them while we worked
    changed_meanwhile: int = 0
    #: how many of the values found were sealed under each old key id
    by_key: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"


@dataclass(frozen=True)
class _Target:
    table: str
    column: str
    primary_key: str
    purpose: str


#: Called after each committed batch with the column's running report.
ProgressCallback = Callable[[ColumnRotation], None]


def _targets() -> list[_Target]:
    targets = []
    for table_name, column_name in encrypted_columns():
        table: Table = Base.metadata.tables[table_name]
        pk = list(table.primary_key.columns)
        if len(pk) != 1:
            raise RuntimeError(f"{table_name}: rotation needs a single-column primary key")
        col_type = table.c[column_name].type
        if not isinstance(col_type, EncryptedBytes | EncryptedText):
            raise RuntimeError(f"{table_name}.{column_name} is not an encrypted column")
        targets.append(_Target(table_name, column_name, pk[0].name, col_type.purpose))
    return targets


def _active_prefix(keyring: Keyring) -> bytes:
    key_id = keyring.active_id.encode("ascii")
    return bytes((FORMAT_VERSION, len(key_id))) + key_id


async def _rotate_batch(
    conn: AsyncConnection,
    target: _Target,
    keyring: Keyring,
    after_id: int,
    batch: int,
    report: ColumnRotation,
    *,
    dry_run: bool,
) -> int | None:
    """Re-seal one batch; return the last primary key seen, or None when the column is done."""
    prefix = _active_prefix(keyring)
    raw = table_clause(
        target.table,
        column(target.primary_key, BigInteger()),
        column(target.column, LargeBinary()),
    )
    pk_col, value_col = raw.c[target.primary_key], raw.c[target.column]
    stale = and_(
        value_col.is_not(None),
        pk_col > after_id,
        func.substr(value_col, 1, len(prefix)) != literal(prefix, LargeBinary()),
    )
    query = select(pk_col, value_col).where(stale).order_by(pk_col).limit(batch)
    if not dry_run and conn.dialect.name == "postgresql":
        # hold the rows until commit, so every UPDATE below finds its old value
        query = query.with_for_update()
    rows = (await conn.execute(query)).all()
    if not rows:
        return None
    params = []
    for row_id, blob in rows:
        old = bytes(blob)
        try:
            old_key = keyring.key_id_of(old)
            plaintext = keyring.decrypt(old, target.purpose)
        except AtRestKeyError as exc:
            raise AtRestKeyError(f"{target.table}.{target.column} row {row_id}: {exc}") from None
        report.by_key[old_key] = report.by_key.get(old_key, 0) + 1
        params.append(
            {"b_pk": row_id, "b_old": old, "b_new": keyring.encrypt(plaintext, target.purpose)}
        )
    if dry_run:
        report.resealed += len(params)
    else:
        # matching the old value too leaves alone what the application rewrote meanwhile
        result = await conn.execute(
            update(raw)
            .where(
                pk_col == bindparam("b_pk"),
                value_col == bindparam("b_old", type_=LargeBinary()),
            )
            .values({target.column: bindparam("b_new", type_=LargeBinary())}),
            params,
        )
        matched = result.rowcount if conn.dialect.supports_sane_multi_rowcount else len(params)
        report.resealed += matched
        report.changed_meanwhile += len(params) - matched
    last_id: int = rows[-1][0]
    return last_id


async def rotate_at_rest(
    database: Database,
    *,
    batch: int = DEFAULT_BATCH,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
) -> list[ColumnRotation]:
    """Re-seal every value not sealed under the active key; return a report per column.

    Each batch of at most ``batch`` rows is one transaction. A value that no key of the keyring
    opens stops the rotation with :class:`AtRestKeyError` naming the table, column and row;
    everything committed before stays done, and a rerun resumes after it is fixed.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    keyring = database.keyring
    reports = []
    for target in _targets():
        report = ColumnRotation(target.table, target.column)
        after_id = 0
        while True:
            async with database.engine.begin() as conn:
                last = await _rotate_batch(
                    conn, target, keyring, after_id, batch, report, dry_run=dry_run
                )
            if last is None:
                break
            after_id = last
            if progress is not None:
                progress(report)
        if report.resealed or report.changed_meanwhile:
            log.info(
                "%s %s: %d values (%s), %d changed meanwhile",
                "would re-seal" if dry_run else "re-sealed",
                report.name,
                report.resealed,
                ", ".join(f"{k}: {n}" for k, n in sorted(report.by_key.items())),
                report.changed_meanwhile,
            )
        reports.append(report)
    return reports
