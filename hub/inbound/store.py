"""Storing fetched mail durably: raw bytes, duplicates, quarantine and the per-mailbox checkpoint.

Everything here runs inside the caller's transaction, so the messages of one batch and the
checkpoint that covers them are committed together (or not at all). A message is idempotent on
(account, mailbox, UIDVALIDITY, UID), and on Message-ID plus the SHA-256 of its bytes: the same
bytes seen again under another UID (a UIDVALIDITY change, a second mailbox) are recorded as a
``duplicate`` row without a second copy of the bytes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.storage.models import ImapCheckpoint, InboundMessage, QuarantinedMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MailboxKey:
    account: str
    mailbox: str
    uidvalidity: int

    @property
    def source(self) -> str:
        return f"imap:{self.account}/{self.mailbox}"[:400]


def content_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def header_message_id(raw: bytes) -> str | None:
    """The Message-ID as written (stripped), or None; never raises on broken headers."""
    try:
        value = BytesHeaderParser(policy=compat32).parsebytes(raw).get("Message-ID")
    except Exception:  # a header block the parser cannot read has no usable Message-ID
        return None
    text = " ".join(str(value).split()) if value is not None else ""
    return text[:998] or None


async def load_checkpoint(
    session: AsyncSession, account: str, mailbox: str
) -> ImapCheckpoint | None:
    result = await session.execute(
        select(ImapCheckpoint).where(
            ImapCheckpoint.account == account, ImapCheckpoint.mailbox == mailbox
        )
    )
    return result.scalar_one_or_none()


async def save_checkpoint(session: AsyncSession, key: MailboxKey, last_uid: int) -> None:
    """Move the checkpoint forward (never back within one UIDVALIDITY)."""
    row = await load_checkpoint(session, key.account, key.mailbox)
    if row is None:
        session.add(
            ImapCheckpoint(
                account=key.account,
                mailbox=key.mailbox,
                uidvalidity=key.uidvalidity,
                last_uid=last_uid,
            )
        )
    elif row.uidvalidity != key.uidvalidity:
        row.uidvalidity, row.last_uid = key.uidvalidity, last_uid
    elif last_uid > row.last_uid:
        row.last_uid = last_uid


async def known_uids(session: AsyncSession, key: MailboxKey, uids: Iterable[int]) -> set[int]:
    """The UIDs of this mailbox and UIDVALIDITY that are stored already."""
    wanted = list(uids)
    if not wanted:
        return set()
    result = await session.execute(
        select(InboundMessage.uid).where(
            InboundMessage.account == key.account,
            InboundMessage.mailbox == key.mailbox,
            InboundMessage.uidvalidity == key.uidvalidity,
            InboundMessage.uid.in_(wanted),
        )
    )
    return {int(uid) for uid in result.scalars()}


async def _original(session: AsyncSession, message_id: str | None, digest: str) -> int | None:
    condition = (
        InboundMessage.message_id.is_(None)
        if message_id is None
        else InboundMessage.message_id == message_id
    )
    result = await session.execute(
        select(InboundMessage.id)
        .where(condition, InboundMessage.content_hash == digest)
        .where(InboundMessage.state != "duplicate")
        .order_by(InboundMessage.id)
        .limit(1)
    )
    return result.scalar_one_or_none()


async def store_raw(session: AsyncSession, key: MailboxKey, uid: int, raw: bytes) -> InboundMessage:
    """Record one fetched message: ``stored``, or ``duplicate`` of an earlier one."""
    message_id = header_message_id(raw)
    digest = content_hash(raw)
    original = await _original(session, message_id, digest)
    row = InboundMessage(
        account=key.account,
        mailbox=key.mailbox,
        uidvalidity=key.uidvalidity,
        uid=uid,
        message_id=message_id,
        content_hash=digest,
        size=len(raw),
        # the original row holds these very bytes: keep one copy
        raw=raw if original is None else b"",
        state="stored" if original is None else "duplicate",
    )
    session.add(row)
    await session.flush()
    return row


async def quarantine_oversize(
    session: AsyncSession, key: MailboxKey, uid: int, size: int, limit: int, headers: bytes
) -> InboundMessage:
    """A message too big to fetch: its header block is kept, with the reason, for a person.

    Its row is idempotent like any other (Message-ID plus the hash of the header block), so a
    UIDVALIDITY change does not quarantine it twice.
    """
    message_id = header_message_id(headers)
    digest = content_hash(headers)
    original = await _original(session, message_id, digest)
    row = InboundMessage(
        account=key.account,
        mailbox=key.mailbox,
        uidvalidity=key.uidvalidity,
        uid=uid,
        message_id=message_id,
        content_hash=digest,
        size=size,
        raw=headers if original is None else b"",
        state="quarantined" if original is None else "duplicate",
    )
    session.add(row)
    await session.flush()
    if original is None:
        await quarantine(
            session,
            row,
            key.source,
            "oversize",
            f"RFC822.SIZE {size} bytes is over imap.max_message_bytes {limit}; "
            "only the header block was fetched",
            headers,
        )
    return row


async def quarantine(
    session: AsyncSession,
    row: InboundMessage | None,
    source: str,
    reason: str,
    detail: str,
    raw: bytes | None,
) -> QuarantinedMessage:
    entry = QuarantinedMessage(
        inbound_message_id=row.id if row is not None else None,
        source=source,
        reason=reason[:400],
        detail=detail,
        raw=raw,
    )
    if row is not None:
        row.state = "quarantined"
    session.add(entry)
    await session.flush()
    log.warning(
        "inbound: quarantined message %s from %s: %s",
        row.message_id if row is not None else "?",
        source,
        reason,
    )
    return entry
