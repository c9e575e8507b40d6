"""call log and screen pops

Revision ID: cti_0001
Revises: 0001
Create Date: 2026-11-25 01:20:25.370424
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "cti_0001"
down_revision = "0001"
branch_labels = ("cti",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "screen_pops",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("server", sa.String(length=40), nullable=False),
        sa.Column("linkedid", sa.String(length=40), nullable=False),
        sa.Column("ring_id", sa.String(length=40), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("displayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["users.id"], name=op.f("fk_screen_pops_agent_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screen_pops")),
    )
    with op.batch_alter_table("screen_pops", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_screen_pops_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_screen_pops_linkedid"), ["linkedid"], unique=False)

    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("server", sa.String(length=40), nullable=False),
        sa.Column("linkedid", sa.String(length=40), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("number", sa.String(length=60), nullable=False),
        sa.Column("number_e164", sa.String(length=40), nullable=True),
        sa.Column("did", sa.String(length=40), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("agent_interface", sa.String(length=80), nullable=True),
        sa.Column("queue", sa.String(length=40), nullable=True),
        sa.Column("recording_path", sa.String(length=300), nullable=True),
        sa.Column("service_request_id", sa.Integer(), nullable=True),
        sa.Column("business_key", sa.String(length=60), nullable=True),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ringing_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("wait_seconds", sa.Float(), nullable=True),
        sa.Column("talk_seconds", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("outcome", sa.String(length=12), nullable=True),
        sa.Column("disposition", sa.String(length=40), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("callback_done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["users.id"], name=op.f("fk_calls_agent_id_users")),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_calls_contact_id_contacts")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_calls_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
        sa.UniqueConstraint("request_id", name=op.f("uq_calls_request_id")),
        sa.UniqueConstraint("server", "linkedid", name="uq_calls_server_linkedid"),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calls_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(
            "ix_calls_agent_processed", ["agent_id", "processed_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_calls_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_entered_at"), ["entered_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_number_e164"), ["number_e164"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_outcome"), ["outcome"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calls_outcome"))
        batch_op.drop_index(batch_op.f("ix_calls_number_e164"))
        batch_op.drop_index(batch_op.f("ix_calls_entered_at"))
        batch_op.drop_index(batch_op.f("ix_calls_customer_id"))
        batch_op.drop_index("ix_calls_agent_processed")
        batch_op.drop_index(batch_op.f("ix_calls_agent_id"))

    op.drop_table("calls")
    with op.batch_alter_table("screen_pops", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_screen_pops_linkedid"))
        batch_op.drop_index(batch_op.f("ix_screen_pops_agent_id"))

    op.drop_table("screen_pops")
