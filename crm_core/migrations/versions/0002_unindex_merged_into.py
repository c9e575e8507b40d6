"""Drop the index on customers.merged_into_id: it misleads SQLite's planner for lookups.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch_op:
        batch_op.drop_index("ix_customers_merged_into_id")


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch_op:
        batch_op.create_index("ix_customers_merged_into_id", ["merged_into_id"], unique=False)
