"""case automation: payments, installment plans and installments, collector tasks, route

Revision ID: 0003_case_automation
Revises: 0002_web_auth
Create Date: 2026-11-22 07:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# integer keys that autoincrement on SQLite and PostgreSQL alike
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# exact amounts: NUMERIC on PostgreSQL, text on SQLite (NUMERIC affinity would turn them to floats)
MONEY = sa.Numeric(18, 4).with_variant(sa.String(40), "sqlite")

revision: str = "0003_case_automation"
down_revision: str | None = "0002_web_auth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("case_id", BIG_ID, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("reference_text", sa.LargeBinary(), nullable=True),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_payments_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("external_id", name=op.f("uq_payments_external_id")),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payments_case_id"), ["case_id"], unique=False)

    op.create_table(
        "installment_plans",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("case_id", BIG_ID, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("amount_per_installment", MONEY, nullable=True),
        sa.Column("frequency", sa.String(length=16), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("proposed_by", sa.String(length=64), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_installment_plans_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installment_plans")),
    )
    with op.batch_alter_table("installment_plans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_installment_plans_case_id"), ["case_id"], unique=False)

    op.create_table(
        "installments",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("plan_id", BIG_ID, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("paid_amount", MONEY, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["installment_plans.id"],
            name=op.f("fk_installments_plan_id_installment_plans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installments")),
        sa.UniqueConstraint("plan_id", "seq", name=op.f("uq_installments_plan_id_seq")),
    )
    with op.batch_alter_table("installments", schema=None) as batch_op:
        batch_op.create_index("ix_installments_status_due", ["status", "due_date"], unique=False)

    op.create_table(
        "collector_tasks",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("case_id", BIG_ID, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("thread_entry_id", BIG_ID, nullable=True),
        sa.Column("reason", sa.String(length=400), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_by", sa.String(length=64), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_collector_tasks_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["thread_entry_id"],
            ["thread_entries.id"],
            name=op.f("fk_collector_tasks_thread_entry_id_thread_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collector_tasks")),
    )
    with op.batch_alter_table("collector_tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_collector_tasks_case_id"), ["case_id"], unique=False)
        batch_op.create_index("ix_collector_tasks_status_kind", ["status", "kind"], unique=False)

    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("route", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_column("route")

    with op.batch_alter_table("collector_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_collector_tasks_status_kind")
        batch_op.drop_index(batch_op.f("ix_collector_tasks_case_id"))
    op.drop_table("collector_tasks")

    with op.batch_alter_table("installments", schema=None) as batch_op:
        batch_op.drop_index("ix_installments_status_due")
    op.drop_table("installments")

    with op.batch_alter_table("installment_plans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_installment_plans_case_id"))
    op.drop_table("installment_plans")

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payments_case_id"))
    op.drop_table("payments")
