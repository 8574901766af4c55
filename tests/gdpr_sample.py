"""Test helper for the data-protection tests: a second person, whole-database snapshots and scans.

``populate_other`` adds a different debtor (distinct strings in every place the first one has
them) to the same creditor. ``snapshot`` reads every column of every table, decrypting the
encrypted ones through the column types, so ``readable_text`` can search everything the database
would give to someone holding the keys.
"""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal
from typing import Any

import sample_personal_data as first
from sqlalchemy import select

from hub.storage.db import Database
from hub.storage.models import (
    Attachment,
    Base,
    Case,
    Debtor,
    DebtorEmail,
    DebtorKey,
    InboundMessage,
    OutboxMessage,
    ThreadEntry,
    utcnow,
)
from hub.storage.models_cases import Payment

OTHER_NAME = "Henrietta Ostrowski-Lindqvist"
OTHER_EMAIL = "henrietta.ostrowski@puffin-mail.example"
OTHER_STREET = "Zitronenhainstieg 7"
OTHER_POSTAL = "DK-8462"
OTHER_CITY = "Ulvsborgholm"
OTHER_PHONE = "+45 2233 4455"
OTHER_BODY = "Jeg har betalt regningen allerede. Henrietta Ostrowski"
OTHER_SUBJECT = "Betaling Ostrowski faktura"
OTHER_RAW = (
    f"From: {OTHER_NAME} <{OTHER_EMAIL}>\r\nSubject: {OTHER_SUBJECT}\r\n\r\n{OTHER_BODY}\r\n"
)
OTHER_ATTACHMENT_NAME = "kvittering-ostrowski.pdf"
OTHER_ATTACHMENT = b"%PDF-1.4 Kvittering Ostrowski DK5000400440116243"
OTHER_PAYMENT_TEXT = "Indbetaling H Ostrowski Zitronenhainstieg"
OTHER_REFERENCE = "other-case-5521"

OTHER_STRINGS = [
    OTHER_NAME,
    "Ostrowski",
    OTHER_EMAIL,
    OTHER_STREET,
    OTHER_POSTAL,
    OTHER_CITY,
    OTHER_PHONE,
    OTHER_BODY,
    OTHER_SUBJECT,
    OTHER_ATTACHMENT_NAME,
    "DK5000400440116243",
    OTHER_PAYMENT_TEXT,
]
#: the first person's strings (the staff user's email and TOTP secrets are not theirs)
STAFF_STRINGS = {first.USER_EMAIL, first.TOTP_SECRET, first.PENDING_TOTP_SECRET}
PERSON_STRINGS = [s for s in first.PERSONAL_STRINGS if s not in STAFF_STRINGS]


async def populate_other(database: Database, creditor_id: int) -> dict[str, int]:
    """A second debtor of the same creditor with a case, a reply, an attachment and mail."""
    keyring = database.keyring
    raw = OTHER_RAW.encode()
    async with database.transaction() as s:
        debtor = Debtor(
            creditor_id=creditor_id,
            external_ref="C-2002",
            name=OTHER_NAME,
            name_hash=keyring.lookup_hash("name:" + OTHER_NAME.lower()),
            street=OTHER_STREET,
            postal_code=OTHER_POSTAL,
            city=OTHER_CITY,
            country="DK",
            phone=OTHER_PHONE,
        )
        debtor.emails = [
            DebtorEmail(
                address=OTHER_EMAIL, address_hash=keyring.email_hash(OTHER_EMAIL), is_primary=True
            )
        ]
        s.add(debtor)
        await s.flush()
        case = Case(
            creditor_id=creditor_id,
            debtor_id=debtor.id,
            reference=OTHER_REFERENCE,
            description="Abonnement Ostrowski",
            claim_amount=Decimal("99.00"),
            currency="DKK",
            due_date=date(2026, 3, 1),
        )
        s.add(case)
        await s.flush()
        entry = ThreadEntry(
            case_id=case.id,
            seq=1,
            kind="inbound",
            actor="debtor",
            message_id="<o1@puffin-mail.example>",
            subject=OTHER_SUBJECT,
            body=OTHER_BODY,
            raw_message=raw,
        )
        entry.attachments = [
            Attachment(
                filename=OTHER_ATTACHMENT_NAME,
                content_type="application/pdf",
                size=len(OTHER_ATTACHMENT),
                sha256=hashlib.sha256(OTHER_ATTACHMENT).hexdigest(),
                content=OTHER_ATTACHMENT,
            )
        ]
        s.add(entry)
        await s.flush()
        s.add(
            DebtorKey(
                debtor_id=debtor.id,
                kind="openpgp",
                fingerprint="FEDCBA98",
                key_data=b"-----BEGIN PGP PUBLIC KEY BLOCK----- Ostrowski",
                email_hash=keyring.email_hash(OTHER_EMAIL),
                source="autocrypt",
            )
        )
        s.add(
            InboundMessage(
                account="hub",
                mailbox="INBOX",
                uidvalidity=1,
                uid=900,
                content_hash=hashlib.sha256(raw).hexdigest(),
                size=len(raw),
                raw=raw,
                thread_entry_id=entry.id,
            )
        )
        s.add(
            OutboxMessage(
                case_id=case.id,
                idempotency_key=f"reminder:{case.id}:1",
                envelope_from="reminders@hub.invalid",
                recipients=OTHER_EMAIL,
                recipient_domain="puffin-mail.example",
                message_id="<out-other@hub.invalid>",
                message=raw,
            )
        )
        s.add(
            Payment(
                case_id=case.id,
                amount=Decimal("10.00"),
                currency="DKK",
                booked_at=utcnow(),
                source="csv",
                external_id="bank-entry-other",
                reference_text=OTHER_PAYMENT_TEXT,
                recorded_by="import:csv",
            )
        )
        return {"debtor": debtor.id, "case": case.id, "entry": entry.id}


Snapshot = dict[str, dict[Any, tuple[Any, ...]]]


async def snapshot(database: Database) -> Snapshot:
    """Every row of every table, encrypted columns decrypted, by table and primary key."""
    found: Snapshot = {}
    async with database.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            pk = [c.name for c in table.primary_key.columns]
            rows = (await conn.execute(select(table))).mappings().all()
            found[table.name] = {
                tuple(row[k] for k in pk): tuple(row[c.name] for c in table.columns) for row in rows
            }
    return found


def readable_text(snap: Snapshot, staff: bool = False) -> str:
    """Everything in the snapshot as one lower-cased text (bytes decoded as UTF-8); without
    the staff tables unless ``staff`` (the sample's TOTP secrets contain the person's name)."""
    parts = []
    for table, rows in snap.items():
        if table in ("users", "web_sessions") and not staff:
            continue
        for row in rows.values():
            for value in row:
                if isinstance(value, bytes | bytearray | memoryview):
                    parts.append(bytes(value).decode("utf-8", "replace"))
                else:
                    parts.append(str(value))
    return "\n".join(parts).lower()


def found_strings(text: str, strings: list[str]) -> list[str]:
    return [s for s in strings if s.lower() in text]


async def owned_rows(database: Database, debtor_id: int) -> dict[str, set[Any]]:
    """Primary keys, by table, of the rows that belong to ``debtor_id``."""
    async with database.sessions() as s:

        async def ids(query: Any) -> set[Any]:
            return {(i,) for i in (await s.scalars(query)).all()}

        cases = {c for (c,) in await ids(select(Case.id).where(Case.debtor_id == debtor_id))}
        entries = {
            e for (e,) in await ids(select(ThreadEntry.id).where(ThreadEntry.case_id.in_(cases)))
        }
        return {
            "debtors": {(debtor_id,)},
            "debtor_emails": await ids(
                select(DebtorEmail.id).where(DebtorEmail.debtor_id == debtor_id)
            ),
            "debtor_keys": await ids(select(DebtorKey.id).where(DebtorKey.debtor_id == debtor_id)),
            "cases": {(c,) for c in cases},
            "thread_entries": {(e,) for e in entries},
            "attachments": await ids(
                select(Attachment.id).where(Attachment.thread_entry_id.in_(entries))
            ),
            "inbound_messages": await ids(
                select(InboundMessage.id).where(InboundMessage.thread_entry_id.in_(entries))
            ),
            "outbox": await ids(select(OutboxMessage.id).where(OutboxMessage.case_id.in_(cases))),
            "payments": await ids(select(Payment.id).where(Payment.case_id.in_(cases))),
        }
