"""Test support for the debtor portal: a creditor with bank details and plan rules, a debtor
with a postal code, the portal link of a case, and the one-time code read back from the outbox
(decrypted at rest by the keyring, as the relay would read it)."""

from __future__ import annotations

import email
import email.policy
import re
from typing import Any

from dunning_support import IBAN, add_creditor, csv_row, import_csv
from sqlalchemy import select, update

from hub.config import Settings
from hub.services.dunning_facts import case_links
from hub.storage.db import Database
from hub.storage.models import Case, Classification, Creditor, Debtor, OutboxMessage, ThreadEntry

CREDITOR_NAME = "Nordlicht Energie GmbH"
DEBTOR_NAME = "Erika Mustermann"
POSTAL = "20457"
_CODE = re.compile(r"\b(\d{6})\b")


async def portal_case(
    database: Database,
    settings: Settings,
    reference: str,
    address: str,
    *,
    language: str = "en",
    amount: str = "310.00",
    plans: dict[str, Any] | None = None,
    creditor: str = "NL",
) -> int:
    async with database.sessions() as session:
        known = await session.scalar(select(Creditor.id).where(Creditor.code == creditor))
    if known is None:
        await add_creditor(database, creditor, CREDITOR_NAME)
    if plans is not None:
        async with database.transaction() as session:
            row = await session.scalar(select(Creditor).where(Creditor.code == creditor))
            assert row is not None
            row.settings = {**row.settings, "plans": plans}
    await import_csv(
        database,
        settings,
        csv_row(creditor, reference, DEBTOR_NAME, address, amount=amount, language=language),
    )
    async with database.transaction() as session:
        case = await session.scalar(select(Case).where(Case.reference == reference))
        assert case is not None
        await session.execute(
            update(Debtor).where(Debtor.id == case.debtor_id).values(postal_code=POSTAL)
        )
        await session.execute(update(Case).where(Case.id == case.id).values(state="reminded"))
        return case.id


def portal_path(settings: Settings, case_id: int) -> str:
    _reply, portal, _opt_out = case_links(settings, case_id)
    return portal.removeprefix(settings.hub.base_url.rstrip("/"))


async def code_mails(database: Database) -> list[OutboxMessage]:
    async with database.sessions() as session:
        rows = await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.idempotency_key.like("portal-code:%"))
            .order_by(OutboxMessage.id)
        )
        return list(rows.all())


def code_of(row: OutboxMessage) -> str:
    message = email.message_from_bytes(row.message, policy=email.policy.default)
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    found = _CODE.search(text)
    assert found, "no code in the mail"
    return found.group(1)


async def latest_code(database: Database) -> str:
    rows = await code_mails(database)
    assert rows, "no code mail in the outbox"
    return code_of(rows[-1])


async def debtor_entries(database: Database, case_id: int) -> list[ThreadEntry]:
    async with database.sessions() as session:
        rows = await session.scalars(
            select(ThreadEntry)
            .where(ThreadEntry.case_id == case_id, ThreadEntry.actor == "debtor")
            .order_by(ThreadEntry.seq)
        )
        return list(rows.all())


async def classification_of(database: Database, entry_id: int) -> Classification:
    async with database.sessions() as session:
        row = await session.scalar(
            select(Classification).where(Classification.thread_entry_id == entry_id)
        )
        assert row is not None
        return row


__all__ = ["IBAN"]
