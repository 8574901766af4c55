"""The database schema as SQLAlchemy 2 typed models.

Personal data (names, postal data, email addresses, phone numbers), message bodies, raw mail,
attachments and keys are stored in :class:`EncryptedText`/:class:`EncryptedBytes` columns, so a
dump of the database holds no readable personal data. Email addresses are found through a keyed
hash column beside them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from hub.storage.types import EncryptedBytes, EncryptedText, Money, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Integer primary keys that autoincrement on both SQLite and PostgreSQL.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        datetime: UTCDateTime,
        Decimal: Money,
    }


class Creditor(Base):
    __tablename__ = "creditors"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    #: what a first demand must state: legal name, address, register number (a company's data)
    legal_identity: Mapped[str] = mapped_column(Text, default="")
    contact_email: Mapped[str] = mapped_column(String(320), default="")
    iban: Mapped[str] = mapped_column(String(34), default="")
    bic: Mapped[str] = mapped_column(String(11), default="")
    #: dunning policy, encryption policy, retention: validated by the services that use them
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Debtor(Base):
    __tablename__ = "debtors"
    __table_args__ = (UniqueConstraint("creditor_id", "external_ref"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id"), index=True)
    #: the creditor's own customer number for this person
    external_ref: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(EncryptedText("debtors.name"))
    name_hash: Mapped[str] = mapped_column(String(64), index=True)
    language: Mapped[str] = mapped_column(String(8), default="en")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Berlin")
    street: Mapped[str | None] = mapped_column(EncryptedText("debtors.street"))
    postal_code: Mapped[str | None] = mapped_column(EncryptedText("debtors.postal_code"))
    city: Mapped[str | None] = mapped_column(EncryptedText("debtors.city"))
    country: Mapped[str | None] = mapped_column(String(2))
    phone: Mapped[str | None] = mapped_column(EncryptedText("debtors.phone"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column()

    emails: Mapped[list[DebtorEmail]] = relationship(
        back_populates="debtor", cascade="all, delete-orphan", order_by="DebtorEmail.id"
    )


class DebtorEmail(Base):
    __tablename__ = "debtor_emails"
    __table_args__ = (UniqueConstraint("debtor_id", "address_hash"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(EncryptedText("debtor_emails.address"))
    address_hash: Mapped[str] = mapped_column(String(64), index=True)
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    verified: Mapped[bool] = mapped_column(Boolean, default=True)
    #: active | undeliverable | opted_out
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    debtor: Mapped[Debtor] = relationship(back_populates="emails")


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("creditor_id", "reference"),
        Index("ix_cases_state_due", "state", "due_date"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id"), index=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id"), index=True)
    reference: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(EncryptedText("cases.description"))
    claim_amount: Mapped[Decimal] = mapped_column()
    currency: Mapped[str] = mapped_column(String(3))
    fees: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    paid_amount: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    due_date: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(32), default="open")
    dunning_level: Mapped[int] = mapped_column(Integer, default=0)
    paused_until: Mapped[datetime | None] = mapped_column()
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column()

    creditor: Mapped[Creditor] = relationship()
    debtor: Mapped[Debtor] = relationship()


class ThreadEntry(Base):
    """One item of a case's thread: a message in or out, a note, a state change, …"""

    __tablename__ = "thread_entries"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    #: position in the case's thread, 1, 2, 3, … assigned under the case's row lock
    seq: Mapped[int] = mapped_column(Integer)
    #: inbound | outbound | note | state_change | classification | bounce | auto_reply | …
    kind: Mapped[str] = mapped_column(String(32))
    #: who or what caused it: "system:importer", "user:12", "debtor", "worker:relay", …
    actor: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    subject: Mapped[str | None] = mapped_column(EncryptedText("thread_entries.subject"))
    body: Mapped[str | None] = mapped_column(EncryptedText("thread_entries.body"))
    raw_message: Mapped[bytes | None] = mapped_column(EncryptedBytes("thread_entries.raw"))
    #: non-personal facts: protection used, decisions taken and why, old and new state
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    internal: Mapped[bool] = mapped_column(Boolean, default=False)

    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="entry", cascade="all, delete-orphan"
    )


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    thread_entry_id: Mapped[int] = mapped_column(
        ForeignKey("thread_entries.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(EncryptedText("attachments.filename"))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(EncryptedBytes("attachments.content"))

    entry: Mapped[ThreadEntry] = relationship(back_populates="attachments")


class Classification(Base):
    __tablename__ = "classifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    thread_entry_id: Mapped[int] = mapped_column(
        ForeignKey("thread_entries.id", ondelete="CASCADE"), index=True
    )
    intent: Mapped[str] = mapped_column(String(32))
    subtype: Mapped[str | None] = mapped_column(String(32))
    confidence: Mapped[float] = mapped_column(Float)
    language: Mapped[str] = mapped_column(String(8))
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    model_version: Mapped[str] = mapped_column(String(64))
    is_suggestion: Mapped[bool] = mapped_column(Boolean, default=True)
    corrected_intent: Mapped[str | None] = mapped_column(String(32))
    corrected_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DebtorKey(Base):
    """An OpenPGP key or an S/MIME certificate a debtor can be written to."""

    __tablename__ = "debtor_keys"
    __table_args__ = (UniqueConstraint("debtor_id", "kind", "fingerprint"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"))
    #: openpgp | smime
    kind: Mapped[str] = mapped_column(String(16))
    fingerprint: Mapped[str] = mapped_column(String(128))
    key_data: Mapped[bytes] = mapped_column(EncryptedBytes("debtor_keys.key_data"))
    email_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    #: autocrypt | attachment | smime-signature | portal | import | collector
    source: Mapped[str] = mapped_column(String(32))
    can_encrypt: Mapped[bool] = mapped_column(Boolean, default=True)
    #: for S/MIME: the recipient announced AES-GCM (AuthEnvelopedData) support
    supports_aead: Mapped[bool] = mapped_column(Boolean, default=False)
    key_created_at: Mapped[datetime | None] = mapped_column()
    expires_at: Mapped[datetime | None] = mapped_column()
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(EncryptedText("users.email"))
    email_hash: Mapped[str] = mapped_column(String(64), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    totp_secret: Mapped[str | None] = mapped_column(EncryptedText("users.totp_secret"))
    #: admin | collector | creditor | auditor
    role: Mapped[str] = mapped_column(String(16))
    creditor_id: Mapped[int | None] = mapped_column(ForeignKey("creditors.id"))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column()


class AuditEntry(Base):
    """Append-only audit log; each row carries the hash of the one before it."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64))
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_state_next", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    thread_entry_id: Mapped[int | None] = mapped_column(ForeignKey("thread_entries.id"))
    #: e.g. "reminder:<case>:<level>": the same reminder is never queued twice
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    #: pending | sending | sent | failed
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column()
    envelope_from: Mapped[str] = mapped_column(String(320))
    recipients: Mapped[str] = mapped_column(EncryptedText("outbox.recipients"))
    recipient_domain: Mapped[str] = mapped_column(String(255))
    message_id: Mapped[str] = mapped_column(String(998), index=True)
    message: Mapped[bytes] = mapped_column(EncryptedBytes("outbox.message"))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()


class ImapCheckpoint(Base):
    __tablename__ = "imap_checkpoints"
    __table_args__ = (UniqueConstraint("account", "mailbox"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account: Mapped[str] = mapped_column(String(320))
    mailbox: Mapped[str] = mapped_column(String(255))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class InboundMessage(Base):
    """The raw bytes of every fetched message, stored before anything else happens to it."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        UniqueConstraint("account", "mailbox", "uidvalidity", "uid"),
        Index("ix_inbound_messages_msgid_hash", "message_id", "content_hash"),
        Index("ix_inbound_messages_state_received", "state", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account: Mapped[str] = mapped_column(String(320))
    mailbox: Mapped[str] = mapped_column(String(255))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[str | None] = mapped_column(String(998))
    content_hash: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    raw: Mapped[bytes] = mapped_column(EncryptedBytes("inbound_messages.raw"))
    #: stored | processed | quarantined | duplicate; ``processed`` means every inbound stage ran
    #: and ``analysis``/``understood`` are set: understood, waiting for routing
    state: Mapped[str] = mapped_column(String(16), default="stored")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column()
    thread_entry_id: Mapped[int | None] = mapped_column(ForeignKey("thread_entries.id"))
    #: the routing decision (rule that matched, case, verdicts), None until routed
    route: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: what the inbound stages found, without personal data (kind, crypto verdicts, rules)
    analysis: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: the personal part of that understanding (addresses, subject, texts) as sealed JSON
    understood: Mapped[bytes | None] = mapped_column(EncryptedBytes("inbound_messages.understood"))


class QuarantinedMessage(Base):
    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    inbound_message_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"))
    #: where it came from: imap:<account>/<mailbox>, smtp, portal, import
    source: Mapped[str] = mapped_column(String(400))
    reason: Mapped[str] = mapped_column(String(400))
    detail: Mapped[str | None] = mapped_column(EncryptedText("quarantine.detail"))
    raw: Mapped[bytes | None] = mapped_column(EncryptedBytes("quarantine.raw"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column()
    resolved_by: Mapped[str | None] = mapped_column(String(64))


def encrypted_columns() -> list[tuple[str, str]]:
    """(table, column) of every encrypted column: what at-rest key rotation walks."""
    found = []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, EncryptedBytes | EncryptedText):
                found.append((table.name, column.name))
    return found


# The web application's tables live in their own module; importing it here registers them in
# Base.metadata, so migrations, the schema check and key rotation see every table.
from hub.storage import models_cases as _models_cases  # noqa: E402, F401
from hub.storage import models_web as _models_web  # noqa: E402, F401
