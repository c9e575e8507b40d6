"""sms_outbox: the message kind and its parameters, for template-only providers

Revision ID: sms_gateway_0002
Revises: sms_gateway_0001
Create Date: 2026-12-04 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "sms_gateway_0002"
down_revision = "sms_gateway_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sms_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("template", sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column("params", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sms_outbox", schema=None) as batch_op:
        batch_op.drop_column("params")
        batch_op.drop_column("template")
