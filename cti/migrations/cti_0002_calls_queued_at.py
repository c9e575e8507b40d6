"""calls.queued_at: waiting time (and the service level) counts from queue entry.

Revision ID: cti_0002
Revises: cti_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "cti_0002"
down_revision = "cti_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch_op:
        batch_op.add_column(sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch_op:
        batch_op.drop_column("queued_at")
