"""The append-only audit log: who did what to which object, chained by SHA-256.

Each :class:`~hub.storage.models.AuditEntry` carries ``prev_hash``, the ``entry_hash`` of the
entry before it (64 zeros for the first), and its own ``entry_hash``: SHA-256 over the canonical
JSON (sorted keys, no spaces, UTF-8) of its fields together with ``prev_hash``. Changing,
inserting or deleting a row in the middle breaks the chain at that row or the one after it, and
:func:`verify_chain` names it. (Cutting entries off the *end* leaves a shorter valid chain: keep
the head hash that ``hub audit verify`` prints somewhere else if that matters.)

Appends are serialised so the chain never forks: on PostgreSQL :func:`record` takes a
transaction-level advisory lock; on SQLite it takes the database's write lock with a no-op write
before reading the previous hash. Either is held until the caller's transaction ends, so call
:func:`record` in the same transaction as the change it audits, late rather than early.

**No personal data in ``details``.** The audit log is never encrypted and never erased, so
``details`` must hold ids, hashes (``keyring.email_hash``), states, counts and reasons only:
never a name, an address, an email address, a phone number or a message text. :func:`record`
refuses any string in ``details`` that looks like an email address, as a last line of defence.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from hub.storage.models import AuditEntry, utcnow

GENESIS_HASH = "0" * 64
#: pg_advisory_xact_lock key that serialises audit appends ("hubaudit" as a big-endian int64).
ADVISORY_LOCK_KEY = int.from_bytes(b"hubaudit", "big")
_EMAIL_LIKE = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")
_VERIFY_BATCH = 1000


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the same data always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def compute_hash(
    *,
    at: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | None,
    remote_addr: str | None,
    details: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 (hex) over the canonical JSON of an entry's fields and the previous hash."""
    document = {
        "at": at.isoformat(),
        "actor": actor,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "remote_addr": remote_addr,
        "details": details,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()


def _hash_of(entry: AuditEntry) -> str:
    return compute_hash(
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        object_type=entry.object_type,
        object_id=entry.object_id,
        remote_addr=entry.remote_addr,
        details=entry.details,
        prev_hash=entry.prev_hash,
    )


def _check_details(value: Any, path: str = "details") -> None:
    if isinstance(value, str):
        if _EMAIL_LIKE.search(value):
            raise ValueError(
                f"{path} looks like an email address: audit details must hold no personal "
                "data (store an id or keyring.email_hash instead)"
            )
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_details(str(key), f"{path} key")
            _check_details(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_details(item, f"{path}[{index}]")


async def _serialise_appends(session: AsyncSession) -> None:
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
        )
    else:
        # A write statement (even one that changes nothing) takes SQLite's write lock, which
        # is held to the end of the transaction: no other append can read the same head.
        await session.execute(text("UPDATE audit_log SET id = id WHERE 0 = 1"))


async def record(
    session: AsyncSession,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | int | None = None,
    remote_addr: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry to the audit log inside the caller's transaction.

    ``details`` must be JSON data without personal data (see the module docstring); a string
    that looks like an email address raises :class:`ValueError`.
    """
    # round-trip through JSON so the hash covers exactly what the database will give back
    clean: dict[str, Any] = json.loads(canonical_json(dict(details or {})))
    _check_details(clean)
    await _serialise_appends(session)
    prev = (
        await session.execute(select(AuditEntry.entry_hash).order_by(AuditEntry.id.desc()).limit(1))
    ).scalar_one_or_none()
    entry = AuditEntry(
        at=utcnow(),
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        remote_addr=remote_addr,
        details=clean,
        prev_hash=prev or GENESIS_HASH,
    )
    entry.entry_hash = _hash_of(entry)
    session.add(entry)
    await session.flush()
    return entry


@dataclass(frozen=True)
class ChainStatus:
    """The outcome of walking the whole chain."""

    entries: int
    #: id of the first entry whose hash or link does not match, or None when all do
    first_broken_id: int | None
    #: entry_hash of the last entry checked (GENESIS_HASH for an empty log)
    head_hash: str


async def chain_status(session: AsyncSession) -> ChainStatus:
    """Walk the log in id order, recomputing every hash and checking every link."""
    expected_prev = GENESIS_HASH
    after_id = 0
    count = 0
    while True:
        batch = (
            (
                await session.execute(
                    select(AuditEntry)
                    .where(AuditEntry.id > after_id)
                    .order_by(AuditEntry.id)
                    .limit(_VERIFY_BATCH)
                    .execution_options(populate_existing=True)
                )
            )
            .scalars()
            .all()
        )
        if not batch:
            return ChainStatus(count, None, expected_prev)
        for entry in batch:
            count += 1
            if entry.prev_hash != expected_prev or _hash_of(entry) != entry.entry_hash:
                return ChainStatus(count, entry.id, expected_prev)
            expected_prev = entry.entry_hash
            after_id = entry.id


async def verify_chain(session: AsyncSession) -> int | None:
    """Return the id of the first entry that breaks the chain, or None if it is intact."""
    return (await chain_status(session)).first_broken_id
