"""triage indexes: unmatched inbound messages and open collector tasks, oldest first

Revision ID: 0006_triage_indexes
Revises: 0005_portal_access
Create Date: 2026-11-22 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006_triage_indexes"
down_revision: str | None = "0005_portal_access"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # the triage page reads state='triage' oldest first; without this it scans every message
    op.create_index(
        "ix_inbound_messages_state_received", "inbound_messages", ["state", "received_at"]
    )
    op.create_index(
        "ix_collector_tasks_status_created", "collector_tasks", ["status", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_collector_tasks_status_created", table_name="collector_tasks")
    op.drop_index("ix_inbound_messages_state_received", table_name="inbound_messages")
