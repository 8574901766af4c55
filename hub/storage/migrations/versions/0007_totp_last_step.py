"""TOTP replay protection: the last accepted time step per account

Revision ID: 0007_totp_last_step
Revises: 0006_triage_indexes
Create Date: 2026-11-22 08:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_totp_last_step"
down_revision: str | None = "0006_triage_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a code is refused when its time step is at or before this one (RFC 6238, 5.2)
    with op.batch_alter_table("user_security", schema=None) as batch_op:
        batch_op.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("user_security", schema=None) as batch_op:
        batch_op.drop_column("totp_last_step")
