"""Which rows hold one person's data: the data subject behind a name given on the command line.

Export (Art. 15/20) and erasure (Art. 17) must agree on what "everything held about a person"
is, so both start from :func:`collect_scope`. A person is found by the creditor's debtor
reference, a case reference or an email address (through the keyed hash, never a plaintext
search). The scope then follows the foreign keys: the debtor's addresses and keys, the cases,
their thread entries, attachments, classifications, outbox rows, payments, plans and tasks; the
raw inbound messages and quarantined copies linked to those entries; and, found by decrypting
and searching the raw bytes for the person's addresses, inbound and quarantined mail that was
never linked to a case (triage, unparseable mail).

:data:`SUBJECT_TABLES` names every table whose rows can belong to a debtor and
:data:`NOT_SUBJECT_TABLES` every other table holding encrypted columns (staff accounts): a test
checks that together they cover every encrypted column, so a new table cannot be forgotten.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from hub.crypto.at_rest import Keyring, normalize_email
from hub.errors import NotFoundError, UserError
from hub.services.debtor_keys import find_debtor
from hub.storage.models import (
    Case,
    Creditor,
    Debtor,
    DebtorEmail,
    InboundMessage,
    OutboxMessage,
    QuarantinedMessage,
    ThreadEntry,
)

#: Tables whose rows may hold a debtor's personal data (what export and erasure walk).
SUBJECT_TABLES = frozenset(
    {
        "debtors",
        "debtor_emails",
        "debtor_keys",
        "cases",
        "thread_entries",
        "attachments",
        "classifications",
        "outbox",
        "inbound_messages",
        "quarantine",
        "payments",
        "installment_plans",
        "installments",
        "collector_tasks",
    }
)
#: Tables with encrypted columns that never hold a debtor's data (the hub's own staff).
NOT_SUBJECT_TABLES = frozenset({"users", "web_sessions"})

_SCAN_BATCH = 200


@dataclass
class Scope:
    """The primary keys of every row that belongs to one person (or to some of their cases)."""

    debtor_id: int
    creditor_code: str
    case_ids: list[int] = field(default_factory=list)
    entry_ids: list[int] = field(default_factory=list)
    inbound_ids: list[int] = field(default_factory=list)
    quarantine_ids: list[int] = field(default_factory=list)
    outbox_ids: list[int] = field(default_factory=list)
    #: lower-cased addresses the person is known by (to find unlinked mail; never logged)
    addresses: list[str] = field(default_factory=list, repr=False)


async def find_subject(
    session: AsyncSession, who: str, creditor_code: str | None, keyring: Keyring
) -> Debtor:
    """The debtor named by an email address, a case reference or the creditor's debtor ref."""
    if "@" not in who:
        return await find_debtor(session, who, creditor_code)
    query = (
        select(Debtor)
        .join(DebtorEmail, DebtorEmail.debtor_id == Debtor.id)
        .join(Creditor, Creditor.id == Debtor.creditor_id)
        .where(DebtorEmail.address_hash == keyring.email_hash(who))
        .options(selectinload(Debtor.emails))
    )
    if creditor_code is not None:
        query = query.where(Creditor.code == creditor_code.upper())
    found = list((await session.scalars(query.distinct())).unique().all())
    if len(found) > 1:
        raise UserError("that address belongs to debtors of several creditors: give --creditor")
    if not found:
        raise NotFoundError(
            "no debtor with that address" + (f" at {creditor_code}" if creditor_code else "")
        )
    return found[0]


async def _ids(session: AsyncSession, query: object) -> list[int]:
    return sorted({int(i) for i in (await session.scalars(query)).all()})  # type: ignore[call-overload]


def _mentions(raw: bytes | None, needles: Iterable[bytes]) -> bool:
    if not raw:
        return False
    haystack = raw.lower()
    return any(needle in haystack for needle in needles)


async def _unlinked_mail(
    session: AsyncSession, addresses: list[str], linked_inbound: set[int]
) -> tuple[list[int], list[int]]:
    """Inbound and quarantined mail not tied to a case whose raw bytes name an address."""
    needles = [a.encode("utf-8") for a in addresses if a]
    if not needles:
        return [], []
    inbound: list[int] = []
    after = 0
    while True:
        rows = (
            await session.execute(
                select(InboundMessage.id, InboundMessage.raw)
                .where(InboundMessage.thread_entry_id.is_(None), InboundMessage.id > after)
                .order_by(InboundMessage.id)
                .limit(_SCAN_BATCH)
            )
        ).all()
        if not rows:
            break
        inbound += [row_id for row_id, raw in rows if _mentions(raw, needles)]
        after = rows[-1][0]
    quarantined: list[int] = []
    after = 0
    known = linked_inbound | set(inbound)
    while True:
        qrows = (
            await session.execute(
                select(
                    QuarantinedMessage.id,
                    QuarantinedMessage.inbound_message_id,
                    QuarantinedMessage.raw,
                )
                .where(QuarantinedMessage.id > after)
                .order_by(QuarantinedMessage.id)
                .limit(_SCAN_BATCH)
            )
        ).all()
        if not qrows:
            break
        quarantined += [
            row_id
            for row_id, inbound_id, raw in qrows
            if (inbound_id is not None and inbound_id in known) or _mentions(raw, needles)
        ]
        after = qrows[-1][0]
    return inbound, quarantined


async def collect_scope(
    session: AsyncSession, debtor: Debtor, case_ids: list[int] | None = None
) -> Scope:
    """Every row of ``debtor`` (or, given ``case_ids``, of those of their cases only)."""
    code = await session.scalar(select(Creditor.code).where(Creditor.id == debtor.creditor_id))
    scope = Scope(debtor_id=debtor.id, creditor_code=str(code))
    all_cases = await _ids(session, select(Case.id).where(Case.debtor_id == debtor.id))
    if case_ids is None:
        scope.case_ids = all_cases
    else:
        foreign = set(case_ids) - set(all_cases)
        if foreign:
            raise UserError(f"cases {sorted(foreign)} do not belong to debtor {debtor.id}")
        scope.case_ids = sorted(case_ids)
    emails = (
        await session.scalars(select(DebtorEmail.address).where(DebtorEmail.debtor_id == debtor.id))
    ).all()
    scope.addresses = sorted({normalize_email(a) for a in emails})
    if scope.case_ids:
        scope.entry_ids = await _ids(
            session, select(ThreadEntry.id).where(ThreadEntry.case_id.in_(scope.case_ids))
        )
    linked = (
        await _ids(
            session,
            select(InboundMessage.id).where(InboundMessage.thread_entry_id.in_(scope.entry_ids)),
        )
        if scope.entry_ids
        else []
    )
    # mail that never reached a case is the whole person's, not one case's
    unlinked_in, quarantined = await _unlinked_mail(
        session, scope.addresses if case_ids is None else [], set(linked)
    )
    if case_ids is not None and linked:
        quarantined = await _ids(
            session,
            select(QuarantinedMessage.id).where(QuarantinedMessage.inbound_message_id.in_(linked)),
        )
    scope.inbound_ids = sorted(set(linked) | set(unlinked_in))
    scope.quarantine_ids = quarantined
    if scope.case_ids:
        by_case = select(OutboxMessage.id).where(OutboxMessage.case_id.in_(scope.case_ids))
        scope.outbox_ids = await _ids(session, by_case)
    if scope.entry_ids:
        by_entry = select(OutboxMessage.id).where(
            OutboxMessage.thread_entry_id.in_(scope.entry_ids)
        )
        scope.outbox_ids = sorted(set(scope.outbox_ids) | set(await _ids(session, by_entry)))
    return scope
