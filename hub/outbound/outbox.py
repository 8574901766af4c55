"""The transactional outbox: queue a finished message in the caller's transaction.

A message to send is written as an :class:`~hub.storage.models.OutboxMessage` row in the same
transaction as the case event that caused it, so the two commit or roll back together; the relay
(:mod:`hub.outbound.relay`) sends what the outbox holds. Queuing is idempotent on the
idempotency key: queuing the same key again returns the row that exists and writes nothing.
"""

from __future__ import annotations

import json
import logging

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from hub.storage.models import OutboxMessage, utcnow

log = logging.getLogger(__name__)

#: the states an outbox row moves through: pending -> sending -> sent | failed (or back to pending)
PENDING = "pending"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"


def recipient_domain(address: str) -> str:
    """The lower-cased domain of an address (``local@Example.ORG`` -> ``example.org``)."""
    local, sep, domain = address.strip().rpartition("@")
    if not sep or not local or not domain or any(c.isspace() for c in address.strip()):
        raise ValueError("not an email address (expected local@domain)")
    return domain.rstrip(">").lower()


def encode_recipients(recipients: list[str]) -> str:
    return json.dumps([r.strip() for r in recipients])


def recipients_of(row: OutboxMessage) -> list[str]:
    """The envelope recipients of a row (stored encrypted as a JSON list)."""
    value = json.loads(row.recipients)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"outbox row {row.id}: recipients are not a list of addresses")
    return value


async def enqueue(
    session: AsyncSession,
    *,
    idempotency_key: str,
    case_id: int | None,
    thread_entry_id: int | None,
    envelope_from: str,
    recipients: list[str],
    message_id: str,
    message: bytes,
) -> OutboxMessage:
    """Queue ``message`` for the relay inside the caller's open transaction.

    ``message`` is the finished RFC 5322 message (CRLF line ends). Nothing is committed here.
    If a row with ``idempotency_key`` exists (committed, or committed meanwhile by a concurrent
    transaction), that row is returned and nothing is written. The insert is
    ``INSERT ... ON CONFLICT DO NOTHING``: a concurrent insert of the same key on PostgreSQL
    waits for the other transaction and then yields to it, instead of failing with a unique
    violation that would abort the caller's whole transaction (and SQLite has one writer).
    """
    if not recipients:
        raise ValueError("an outbox message needs at least one recipient")
    if not idempotency_key:
        raise ValueError("an outbox message needs an idempotency key")
    domain = recipient_domain(recipients[0])
    for address in recipients[1:]:
        recipient_domain(address)  # validates

    bind = session.get_bind()
    insert = pg_insert if bind.dialect.name == "postgresql" else sqlite_insert
    now = utcnow()
    values = {
        "idempotency_key": idempotency_key,
        "case_id": case_id,
        "thread_entry_id": thread_entry_id,
        "state": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "claimed_by": None,
        "claimed_at": None,
        "envelope_from": envelope_from,
        "recipients": encode_recipients(recipients),
        "recipient_domain": domain,
        "message_id": message_id,
        "message": bytes(message),
        "last_error": None,
        "sent_at": None,
    }
    stmt = (
        insert(OutboxMessage)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(OutboxMessage.id)
    )
    new_id = (await session.execute(stmt)).scalar_one_or_none()
    if new_id is not None:
        # the row is exactly ``values``: attach it to the session without reading it back
        row = OutboxMessage(id=new_id, **values)
        make_transient_to_detached(row)
        session.add(row)
        log.info(
            "outbox: queued id %s case %s message-id %s domain %s",
            row.id,
            case_id,
            message_id,
            domain,
        )
        return row
    existing = await _by_key(session, idempotency_key)
    if existing is None:  # pragma: no cover - a conflicting row is committed, hence visible
        raise RuntimeError("outbox: idempotency key conflicted but no row is visible")
    log.info("outbox: key already queued, nothing written (outbox id %s)", existing.id)
    return existing


async def _by_key(session: AsyncSession, idempotency_key: str) -> OutboxMessage | None:
    result = await session.execute(
        select(OutboxMessage)
        .where(OutboxMessage.idempotency_key == idempotency_key)
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()
