"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 06:55:25.073291
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# integer keys that autoincrement on SQLite and PostgreSQL alike
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# exact amounts: NUMERIC on PostgreSQL, text on SQLite (NUMERIC affinity would turn them to floats)
MONEY = sa.Numeric(18, 4).with_variant(sa.String(40), "sqlite")
revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=True),
        sa.Column("remote_addr", sa.String(length=64), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        sa.UniqueConstraint("entry_hash", name=op.f("uq_audit_log_entry_hash")),
    )
    op.create_table(
        "creditors",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("legal_identity", sa.Text(), nullable=False),
        sa.Column("contact_email", sa.String(length=320), nullable=False),
        sa.Column("iban", sa.String(length=34), nullable=False),
        sa.Column("bic", sa.String(length=11), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_creditors")),
        sa.UniqueConstraint("code", name=op.f("uq_creditors_code")),
    )
    op.create_table(
        "imap_checkpoints",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("account", sa.String(length=320), nullable=False),
        sa.Column("mailbox", sa.String(length=255), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imap_checkpoints")),
        sa.UniqueConstraint("account", "mailbox", name=op.f("uq_imap_checkpoints_account_mailbox")),
    )
    op.create_table(
        "debtors",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("creditor_id", BIG_ID, nullable=False),
        sa.Column("external_ref", sa.String(length=64), nullable=False),
        sa.Column("name", sa.LargeBinary(), nullable=False),
        sa.Column("name_hash", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("street", sa.LargeBinary(), nullable=True),
        sa.Column("postal_code", sa.LargeBinary(), nullable=True),
        sa.Column("city", sa.LargeBinary(), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("phone", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["creditor_id"], ["creditors.id"], name=op.f("fk_debtors_creditor_id_creditors")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_debtors")),
        sa.UniqueConstraint(
            "creditor_id", "external_ref", name=op.f("uq_debtors_creditor_id_external_ref")
        ),
    )
    with op.batch_alter_table("debtors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_debtors_creditor_id"), ["creditor_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_debtors_name_hash"), ["name_hash"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("email", sa.LargeBinary(), nullable=False),
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("totp_secret", sa.LargeBinary(), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("creditor_id", BIG_ID, nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["creditor_id"], ["creditors.id"], name=op.f("fk_users_creditor_id_creditors")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_email_hash"), ["email_hash"], unique=False)

    op.create_table(
        "cases",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("creditor_id", BIG_ID, nullable=False),
        sa.Column("debtor_id", BIG_ID, nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("description", sa.LargeBinary(), nullable=True),
        sa.Column("claim_amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("fees", MONEY, nullable=False),
        sa.Column("paid_amount", MONEY, nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("dunning_level", sa.Integer(), nullable=False),
        sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("legal_hold", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["creditor_id"], ["creditors.id"], name=op.f("fk_cases_creditor_id_creditors")
        ),
        sa.ForeignKeyConstraint(
            ["debtor_id"], ["debtors.id"], name=op.f("fk_cases_debtor_id_debtors")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint(
            "creditor_id", "reference", name=op.f("uq_cases_creditor_id_reference")
        ),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cases_creditor_id"), ["creditor_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_debtor_id"), ["debtor_id"], unique=False)
        batch_op.create_index("ix_cases_state_due", ["state", "due_date"], unique=False)

    op.create_table(
        "debtor_emails",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("debtor_id", BIG_ID, nullable=False),
        sa.Column("address", sa.LargeBinary(), nullable=False),
        sa.Column("address_hash", sa.String(length=64), nullable=False),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["debtor_id"],
            ["debtors.id"],
            name=op.f("fk_debtor_emails_debtor_id_debtors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_debtor_emails")),
        sa.UniqueConstraint(
            "debtor_id", "address_hash", name=op.f("uq_debtor_emails_debtor_id_address_hash")
        ),
    )
    with op.batch_alter_table("debtor_emails", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_debtor_emails_address_hash"), ["address_hash"], unique=False
        )

    op.create_table(
        "debtor_keys",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("debtor_id", BIG_ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("fingerprint", sa.String(length=128), nullable=False),
        sa.Column("key_data", sa.LargeBinary(), nullable=False),
        sa.Column("email_hash", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("can_encrypt", sa.Boolean(), nullable=False),
        sa.Column("supports_aead", sa.Boolean(), nullable=False),
        sa.Column("key_created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["debtor_id"],
            ["debtors.id"],
            name=op.f("fk_debtor_keys_debtor_id_debtors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_debtor_keys")),
        sa.UniqueConstraint(
            "debtor_id",
            "kind",
            "fingerprint",
            name=op.f("uq_debtor_keys_debtor_id_kind_fingerprint"),
        ),
    )
    with op.batch_alter_table("debtor_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_debtor_keys_email_hash"), ["email_hash"], unique=False)

    op.create_table(
        "thread_entries",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("case_id", BIG_ID, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=True),
        sa.Column("subject", sa.LargeBinary(), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("raw_message", sa.LargeBinary(), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("internal", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_thread_entries_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_thread_entries")),
        sa.UniqueConstraint("case_id", "seq", name=op.f("uq_thread_entries_case_id_seq")),
    )
    with op.batch_alter_table("thread_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_thread_entries_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_thread_entries_message_id"), ["message_id"], unique=False
        )

    op.create_table(
        "attachments",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("thread_entry_id", BIG_ID, nullable=False),
        sa.Column("filename", sa.LargeBinary(), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["thread_entry_id"],
            ["thread_entries.id"],
            name=op.f("fk_attachments_thread_entry_id_thread_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
    )
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_attachments_thread_entry_id"), ["thread_entry_id"], unique=False
        )

    op.create_table(
        "classifications",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("thread_entry_id", BIG_ID, nullable=False),
        sa.Column("intent", sa.String(length=32), nullable=False),
        sa.Column("subtype", sa.String(length=32), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("is_suggestion", sa.Boolean(), nullable=False),
        sa.Column("corrected_intent", sa.String(length=32), nullable=True),
        sa.Column("corrected_by", BIG_ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["corrected_by"], ["users.id"], name=op.f("fk_classifications_corrected_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["thread_entry_id"],
            ["thread_entries.id"],
            name=op.f("fk_classifications_thread_entry_id_thread_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_classifications")),
    )
    with op.batch_alter_table("classifications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_classifications_thread_entry_id"), ["thread_entry_id"], unique=False
        )

    op.create_table(
        "inbound_messages",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("account", sa.String(length=320), nullable=False),
        sa.Column("mailbox", sa.String(length=255), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("thread_entry_id", BIG_ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["thread_entry_id"],
            ["thread_entries.id"],
            name=op.f("fk_inbound_messages_thread_entry_id_thread_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_messages")),
        sa.UniqueConstraint(
            "account",
            "mailbox",
            "uidvalidity",
            "uid",
            name=op.f("uq_inbound_messages_account_mailbox_uidvalidity_uid"),
        ),
    )
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inbound_messages_msgid_hash", ["message_id", "content_hash"], unique=False
        )

    op.create_table(
        "outbox",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("case_id", BIG_ID, nullable=True),
        sa.Column("thread_entry_id", BIG_ID, nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("envelope_from", sa.String(length=320), nullable=False),
        sa.Column("recipients", sa.LargeBinary(), nullable=False),
        sa.Column("recipient_domain", sa.String(length=255), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("message", sa.LargeBinary(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_outbox_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["thread_entry_id"],
            ["thread_entries.id"],
            name=op.f("fk_outbox_thread_entry_id_thread_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_outbox_idempotency_key")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_message_id"), ["message_id"], unique=False)
        batch_op.create_index("ix_outbox_state_next", ["state", "next_attempt_at"], unique=False)

    op.create_table(
        "quarantine",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("inbound_message_id", BIG_ID, nullable=True),
        sa.Column("source", sa.String(length=400), nullable=False),
        sa.Column("reason", sa.String(length=400), nullable=False),
        sa.Column("detail", sa.LargeBinary(), nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["inbound_message_id"],
            ["inbound_messages.id"],
            name=op.f("fk_quarantine_inbound_message_id_inbound_messages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine")),
    )


def downgrade() -> None:
    op.drop_table("quarantine")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_state_next")
        batch_op.drop_index(batch_op.f("ix_outbox_message_id"))
        batch_op.drop_index(batch_op.f("ix_outbox_case_id"))

    op.drop_table("outbox")
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_messages_msgid_hash")

    op.drop_table("inbound_messages")
    with op.batch_alter_table("classifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_classifications_thread_entry_id"))

    op.drop_table("classifications")
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attachments_thread_entry_id"))

    op.drop_table("attachments")
    with op.batch_alter_table("thread_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_thread_entries_message_id"))
        batch_op.drop_index(batch_op.f("ix_thread_entries_case_id"))

    op.drop_table("thread_entries")
    with op.batch_alter_table("debtor_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_debtor_keys_email_hash"))

    op.drop_table("debtor_keys")
    with op.batch_alter_table("debtor_emails", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_debtor_emails_address_hash"))

    op.drop_table("debtor_emails")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_state_due")
        batch_op.drop_index(batch_op.f("ix_cases_debtor_id"))
        batch_op.drop_index(batch_op.f("ix_cases_creditor_id"))

    op.drop_table("cases")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_email_hash"))

    op.drop_table("users")
    with op.batch_alter_table("debtors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_debtors_name_hash"))
        batch_op.drop_index(batch_op.f("ix_debtors_creditor_id"))

    op.drop_table("debtors")
    op.drop_table("imap_checkpoints")
    op.drop_table("creditors")
    op.drop_table("audit_log")
