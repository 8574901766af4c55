"""Test helper: one debtor's worth of distinctive personal data in every encrypted column.

Used by the rotation and the database-dump tests. ``populate`` writes through the ORM (so the
values are sealed by the engine's keyring), ``read_back`` reads them through the ORM again, and
``raw_values`` reads the stored ciphertext at the SQL core level.
"""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, LargeBinary, column, select, table

from hub.storage.db import Database
from hub.storage.models import (
    Attachment,
    Case,
    Classification,
    Creditor,
    Debtor,
    DebtorEmail,
    DebtorKey,
    InboundMessage,
    OutboxMessage,
    QuarantinedMessage,
    ThreadEntry,
    User,
    encrypted_columns,
    utcnow,
)
from hub.storage.models_cases import CollectorTask, InstallmentPlan, Payment
from hub.storage.models_web import WebSession

NAME = "Quirinius Vandersloot-Ærø"
EMAIL = "quirinius.vandersloot@zebrafinch-mail.example"
SECOND_EMAIL = "q.vandersloot.privat@otter-post.example"
STREET = "Xylophonweg 42b"
POSTAL_CODE = "D-97531"
CITY = "Kleinwuppertalhausen"
PHONE = "+49 151 98765432"
DESCRIPTION = "Zahnbehandlung Vandersloot Quartal III"
SUBJECT = "Widerspruch Vandersloot Mahnung"
BODY = "Sehr geehrte Damen und Herren, ich bestreite die Forderung. Quirinius Vandersloot"
RAW_MESSAGE = f"From: {NAME} <{EMAIL}>\r\nSubject: {SUBJECT}\r\n\r\n{BODY}\r\n".encode()
ATTACHMENT_NAME = "kontoauszug-vandersloot.pdf"
ATTACHMENT = b"%PDF-1.4 Kontoauszug Vandersloot IBAN DE89370400440532013000 Ueberweisung"
KEY_DATA = b"-----BEGIN PGP PUBLIC KEY BLOCK----- Vandersloot keydata"
USER_EMAIL = "collector.wilhelmina@agency-intern.example"
TOTP_SECRET = "JBSWY3DPEHPK3PXPVANDERSLOOT"
#: a TOTP secret shown during enrolment, held in the web session until confirmed
PENDING_TOTP_SECRET = "KRSXG5CTMVRXEZLUVANDERSLOOTPEND"
QUARANTINE_DETAIL = "could not parse reply from Vandersloot"
#: the personal part of what the inbound stages understood (inbound_messages.understood)
UNDERSTOOD = f'{{"from": "{EMAIL}", "subject": "{SUBJECT}", "text": "{BODY}"}}'.encode()
#: a bank statement's remittance text (payments.reference_text)
PAYMENT_TEXT = "Ueberweisung Q. Vandersloot Rechnung Xylophonweg"

#: Strings that must never be readable in a dump of the database.
PERSONAL_STRINGS = [
    NAME,
    "Vandersloot",
    EMAIL,
    SECOND_EMAIL,
    STREET,
    "Xylophonweg",
    POSTAL_CODE,
    CITY,
    PHONE,
    "98765432",
    DESCRIPTION,
    SUBJECT,
    BODY,
    "bestreite die Forderung",
    ATTACHMENT_NAME,
    "DE89370400440532013000",
    USER_EMAIL,
    TOTP_SECRET,
    PENDING_TOTP_SECRET,
    PAYMENT_TEXT,
]
#: Stored in clear on purpose (a plaintext column): proves a search of the dump can succeed.
CANARY = "canary-reference-7f3a9c"


async def populate(database: Database, suffix: str = "") -> dict[str, int]:
    """Insert one creditor, debtor, case, thread entry and a row in every encrypted table."""
    keyring = database.keyring
    async with database.transaction() as s:
        creditor = Creditor(code=f"ACME{suffix}", name="Acme Inkasso GmbH")
        s.add(creditor)
        await s.flush()
        debtor = Debtor(
            creditor_id=creditor.id,
            external_ref=f"C-1001{suffix}",
            name=NAME,
            name_hash=keyring.lookup_hash("name:" + NAME.lower()),
            street=STREET,
            postal_code=POSTAL_CODE,
            city=CITY,
            country="DE",
            phone=PHONE,
        )
        debtor.emails = [
            DebtorEmail(address=EMAIL, address_hash=keyring.email_hash(EMAIL), is_primary=True),
            DebtorEmail(address=SECOND_EMAIL, address_hash=keyring.email_hash(SECOND_EMAIL)),
        ]
        s.add(debtor)
        await s.flush()
        case = Case(
            creditor_id=creditor.id,
            debtor_id=debtor.id,
            reference=CANARY + suffix,
            description=DESCRIPTION,
            claim_amount=Decimal("1250.50"),
            currency="EUR",
            due_date=date(2026, 1, 31),
        )
        s.add(case)
        await s.flush()
        entry = ThreadEntry(
            case_id=case.id,
            seq=1,
            kind="inbound",
            actor="debtor",
            message_id=f"<m1{suffix}@zebrafinch-mail.example>",
            subject=SUBJECT,
            body=BODY,
            raw_message=RAW_MESSAGE,
            meta={"marker": CANARY},
        )
        entry.attachments = [
            Attachment(
                filename=ATTACHMENT_NAME,
                content_type="application/pdf",
                size=len(ATTACHMENT),
                sha256=hashlib.sha256(ATTACHMENT).hexdigest(),
                content=ATTACHMENT,
            )
        ]
        s.add(entry)
        await s.flush()
        s.add(
            DebtorKey(
                debtor_id=debtor.id,
                kind="openpgp",
                fingerprint=f"ABCDEF{suffix}",
                key_data=KEY_DATA,
                email_hash=keyring.email_hash(EMAIL),
                source="import",
            )
        )
        user = User(
            username=f"wilhelmina{suffix}",
            email=USER_EMAIL,
            email_hash=keyring.email_hash(USER_EMAIL),
            password_hash="argon2id$placeholder",
            totp_secret=TOTP_SECRET,
            role="collector",
        )
        s.add(user)
        await s.flush()
        s.add(
            WebSession(
                token_hash=hashlib.sha256(f"session{suffix}".encode()).hexdigest(),
                user_id=user.id,
                stage="enrol",
                pending_totp_secret=PENDING_TOTP_SECRET,
                expires_at=utcnow(),
            )
        )
        s.add(
            OutboxMessage(
                case_id=case.id,
                thread_entry_id=entry.id,
                idempotency_key=f"reminder:{case.id}:1{suffix}",
                envelope_from="reminders@hub.invalid",
                recipients=EMAIL,
                recipient_domain="zebrafinch-mail.example",
                message_id=f"<out1{suffix}@hub.invalid>",
                message=RAW_MESSAGE,
            )
        )
        inbound = InboundMessage(
            account="hub",
            mailbox="INBOX",
            uidvalidity=1,
            uid=1 + sum(suffix.encode()),
            content_hash=hashlib.sha256(RAW_MESSAGE + suffix.encode()).hexdigest(),
            size=len(RAW_MESSAGE),
            raw=RAW_MESSAGE,
            thread_entry_id=entry.id,
            analysis={"kind": "reply", "protection": "none"},
            understood=UNDERSTOOD,
            route={
                "case_id": case.id,
                "rule": "reply_token",
                "to_triage": False,
                "sender_verified": True,
                "proposed_address": {"redacted": "q***@otter-post.example"},
            },
        )
        s.add(inbound)
        await s.flush()
        s.add(
            QuarantinedMessage(
                inbound_message_id=inbound.id,
                source="imap:hub/INBOX",
                reason="unparseable",
                detail=QUARANTINE_DETAIL,
                raw=RAW_MESSAGE,
            )
        )
        # the tables of a case's money and follow-up, and a classification with its spans
        s.add(
            Payment(
                case_id=case.id,
                amount=Decimal("250.50"),
                currency="EUR",
                booked_at=utcnow(),
                source="csv",
                external_id=f"bank-entry-1{suffix}",
                reference_text=PAYMENT_TEXT,
                recorded_by="import:csv",
            )
        )
        s.add(
            InstallmentPlan(
                case_id=case.id,
                status="approved",
                count=4,
                amount_per_installment=Decimal("250.00"),
                frequency="monthly",
                start_date=date(2026, 2, 1),
                proposed_by="debtor",
                meta={"terms": {"count": 4}, "proposal_entry": 1},
            )
        )
        s.add(CollectorTask(case_id=case.id, kind="review_dispute", reason="dispute: not_owed"))
        s.add(
            Classification(
                thread_entry_id=entry.id,
                intent="dispute",
                confidence=0.91,
                language="de",
                fields={"reason": "not_owed", "spans": {"reason": [47, 70]}},
                model_version="test-1",
            )
        )
        return {
            "creditor": creditor.id,
            "debtor": debtor.id,
            "case": case.id,
            "entry": entry.id,
        }


async def read_back(database: Database) -> dict[str, Any]:
    """Every encrypted value, decrypted through the ORM, keyed by table.column."""
    found: dict[str, Any] = {}
    async with database.sessions() as s:
        for (table_name, column_name), model in _models().items():
            values = (await s.execute(select(getattr(model, column_name)))).scalars().all()
            found[f"{table_name}.{column_name}"] = sorted(
                (v for v in values if v is not None), key=repr
            )
    return found


def expected_values() -> dict[str, list[Any]]:
    """What :func:`read_back` gives after one :func:`populate`."""
    return {
        "debtors.name": [NAME],
        "debtors.street": [STREET],
        "debtors.postal_code": [POSTAL_CODE],
        "debtors.city": [CITY],
        "debtors.phone": [PHONE],
        "users.email": [USER_EMAIL],
        "users.totp_secret": [TOTP_SECRET],
        "cases.description": [DESCRIPTION],
        "debtor_emails.address": sorted([EMAIL, SECOND_EMAIL], key=repr),
        "debtor_keys.key_data": [KEY_DATA],
        "thread_entries.subject": [SUBJECT],
        "thread_entries.body": [BODY],
        "thread_entries.raw_message": [RAW_MESSAGE],
        "attachments.filename": [ATTACHMENT_NAME],
        "attachments.content": [ATTACHMENT],
        "inbound_messages.raw": [RAW_MESSAGE],
        "inbound_messages.understood": [UNDERSTOOD],
        "outbox.recipients": [EMAIL],
        "outbox.message": [RAW_MESSAGE],
        "quarantine.detail": [QUARANTINE_DETAIL],
        "quarantine.raw": [RAW_MESSAGE],
        "web_sessions.pending_totp_secret": [PENDING_TOTP_SECRET],
        "payments.reference_text": [PAYMENT_TEXT],
    }


def _models() -> dict[tuple[str, str], Any]:
    by_table = {
        model.__tablename__: model
        for model in (
            Debtor,
            DebtorEmail,
            Case,
            ThreadEntry,
            Attachment,
            DebtorKey,
            User,
            OutboxMessage,
            InboundMessage,
            QuarantinedMessage,
            WebSession,
            Payment,
        )
    }
    return {(t, c): by_table[t] for t, c in encrypted_columns()}


async def raw_values(database: Database) -> dict[str, dict[int, bytes]]:
    """The stored ciphertext of every encrypted column, by table.column and primary key."""
    found: dict[str, dict[int, bytes]] = {}
    async with database.engine.connect() as conn:
        for table_name, column_name in encrypted_columns():
            raw = table(table_name, column("id", BigInteger()), column(column_name, LargeBinary()))
            rows = await conn.execute(
                select(raw.c.id, raw.c[column_name]).where(raw.c[column_name].is_not(None))
            )
            found[f"{table_name}.{column_name}"] = {row[0]: bytes(row[1]) for row in rows}
    return found
