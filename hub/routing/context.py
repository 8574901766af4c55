"""What every routing rule is given: the session, the keys, the policy, and shared look-ups.

A rule is a small named object with one async method ``apply(ctx, msg)``; the look-ups that
several rules and the trust check need (who uses the sender's address, which case a
Message-ID of ours belongs to) live here, each run once per message and cached.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crypto.at_rest import Keyring
from hub.domain.routing import RoutingInput, RuleOutcome
from hub.storage.models import Debtor, DebtorEmail, OutboxMessage, ThreadEntry

if TYPE_CHECKING:
    from hub.config import Settings

#: Thread entry kinds that record a message WE sent (their Message-IDs are ours). Every mail
#: the hub sends also passes through the outbox, whose Message-IDs are looked up as well.
OUR_MESSAGE_KINDS = frozenset({"reminder", "outbound", "answer", "confirmation", "notice"})
#: Parameters per ``IN (...)``: well under SQLite's and PostgreSQL's limits.
IN_CHUNK = 500
_MSG_ID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True)
class RoutingPolicy:
    """Settings routing needs; :meth:`from_settings` builds it from the hub's configuration."""

    #: the hub's reply domain: ``reply+``/``bounce+`` addresses elsewhere are not ours
    reply_domain: str | None = None
    #: authserv-ids whose ``Authentication-Results`` are believed (RFC 8601, section 5)
    trusted_authserv_ids: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> RoutingPolicy:
        return cls(
            reply_domain=settings.smtp.reply_domain,
            trusted_authserv_ids=settings.imap.trusted_authserv_ids,
        )


@dataclass(frozen=True)
class SenderAddress:
    """A debtor (not erased) that has the sender's address, and how it has it."""

    debtor_id: int
    creditor_id: int
    verified: bool
    status: str


def bare_address(address: str) -> str:
    """``local@domain`` from an address that may still carry a display name."""
    return parseaddr(address)[1] if "<" in address else address.strip()


def message_ids(value: str | None) -> list[str]:
    """The ``<id>`` tokens of a header value; a bare id without brackets gets them."""
    if not value:
        return []
    found = _MSG_ID.findall(value)
    if found:
        return list(found)
    text = value.strip()
    return [f"<{text}>"] if text and " " not in text and "@" in text else []


def chunks(items: Sequence[str], size: int = IN_CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class RuleContext:
    session: AsyncSession
    keyring: Keyring
    reply_key: bytes
    msg: RoutingInput
    policy: RoutingPolicy = RoutingPolicy()
    #: the outbox row a report is about, when a rule found it (for the decision)
    outbox_id: int | None = None
    _senders: list[SenderAddress] | None = field(default=None, repr=False)
    _ours: dict[str, tuple[int | None, int | None]] | None = field(default=None, repr=False)

    @property
    def sender(self) -> str:
        return bare_address(self.msg.from_address)

    @property
    def sender_hash(self) -> str | None:
        sender = self.sender
        return self.keyring.email_hash(sender) if "@" in sender else None

    async def sender_addresses(self) -> list[SenderAddress]:
        """Every debtor (not erased) whose known addresses include the sender (one query)."""
        if self._senders is None:
            digest = self.sender_hash
            self._senders = []
            if digest is not None:
                rows = await self.session.execute(
                    select(
                        DebtorEmail.debtor_id,
                        Debtor.creditor_id,
                        DebtorEmail.verified,
                        DebtorEmail.status,
                    )
                    .join(Debtor, Debtor.id == DebtorEmail.debtor_id)
                    .where(DebtorEmail.address_hash == digest, Debtor.erased_at.is_(None))
                )
                self._senders = [SenderAddress(*row) for row in rows]
        return self._senders

    async def sender_debtor_ids(self) -> set[int]:
        return {s.debtor_id for s in await self.sender_addresses()}

    async def our_messages(self, ids: Sequence[str]) -> dict[str, tuple[int | None, int | None]]:
        """Message-ID -> (case id, outbox row id) for those of ``ids`` that WE sent.

        Looked up in the outbox and in thread entries of :data:`OUR_MESSAGE_KINDS`, by the
        indexed ``message_id`` columns; the outbox wins where both know an id.
        """
        wanted = [i for i in dict.fromkeys(ids) if i]
        if self._ours is None:
            self._ours = {}
        missing = [i for i in wanted if i not in self._ours]
        for part in chunks(missing):
            entries = await self.session.execute(
                select(ThreadEntry.message_id, ThreadEntry.case_id).where(
                    ThreadEntry.message_id.in_(part), ThreadEntry.kind.in_(OUR_MESSAGE_KINDS)
                )
            )
            for entry_id, entry_case in entries:
                if entry_id is not None:
                    self._ours[entry_id] = (entry_case, None)
            outbox = await self.session.execute(
                select(OutboxMessage.message_id, OutboxMessage.case_id, OutboxMessage.id).where(
                    OutboxMessage.message_id.in_(part)
                )
            )
            for out_id, out_case, outbox_id in outbox:
                known_case = self._ours.get(out_id, (None, None))[0]
                self._ours[out_id] = (out_case or known_case, outbox_id)
        return {i: self._ours[i] for i in wanted if i in self._ours}


class Rule(Protocol):
    """One routing rule: a name, what it does, and one method."""

    name: str
    description: str

    async def apply(self, ctx: RuleContext, msg: RoutingInput) -> RuleOutcome: ...
