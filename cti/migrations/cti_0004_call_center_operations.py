"""Call-center operations on the call log: hold and wrap-up times, closed-hours and overflow
routing, voicemail; the queue-callback jobs; the supervisors' listen/whisper/barge sessions.

Revision ID: cti_0004
Revises: cti_0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "cti_0004"
down_revision = "cti_0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch_op:
        batch_op.add_column(sa.Column("hold_seconds", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("wrapup_seconds", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("wrapup_until", TS, nullable=True))
        batch_op.add_column(sa.Column("wrapup_extended", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("routed", sa.String(20), nullable=True))
        batch_op.add_column(sa.Column("overflowed_from", sa.String(40), nullable=True))
        batch_op.add_column(sa.Column("voicemail_at", TS, nullable=True))
    op.create_table(
        "queue_callbacks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("server", sa.String(40), nullable=False),
        sa.Column("linkedid", sa.String(40), nullable=False),
        sa.Column("source", sa.String(12), nullable=False),
        sa.Column("queue", sa.String(40), nullable=False),
        sa.Column("number", sa.String(60), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("place_at", TS, nullable=False),
        sa.Column("requested_at", TS, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("claim_token", sa.String(40), nullable=True),
        sa.Column("claimed_at", TS, nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("attempt_id", sa.String(60), nullable=True),
        sa.Column("attempt_linkedid", sa.String(40), nullable=True),
        sa.Column("last_result", sa.String(60), nullable=True),
        sa.Column("done_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_queue_callbacks_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["users.id"], name=op.f("fk_queue_callbacks_agent_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_callbacks")),
        sa.UniqueConstraint("server", "linkedid", name="uq_queue_callbacks_server_linkedid"),
        sa.UniqueConstraint("attempt_id", name=op.f("uq_queue_callbacks_attempt_id")),
    )
    op.create_index("ix_queue_callbacks_state", "queue_callbacks", ["state", "place_at"])
    op.create_table(
        "spy_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("supervisor_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("server", sa.String(40), nullable=False),
        sa.Column("linkedid", sa.String(40), nullable=False),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("action_id", sa.String(60), nullable=False),
        sa.Column("channel", sa.String(120), nullable=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("answered_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.CheckConstraint(
            "mode in ('listen','whisper','barge')", name=op.f("ck_spy_sessions_mode")
        ),
        sa.ForeignKeyConstraint(
            ["supervisor_id"], ["users.id"], name=op.f("fk_spy_sessions_supervisor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["users.id"], name=op.f("fk_spy_sessions_agent_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spy_sessions")),
        sa.UniqueConstraint("action_id", name=op.f("uq_spy_sessions_action_id")),
    )
    op.create_index("ix_calls_ended_at", "calls", ["ended_at"])


def downgrade() -> None:
    op.drop_index("ix_calls_ended_at", table_name="calls")
    op.drop_table("spy_sessions")
    op.drop_index("ix_queue_callbacks_state", table_name="queue_callbacks")
    op.drop_table("queue_callbacks")
    with op.batch_alter_table("calls") as batch_op:
        for column in (
            "voicemail_at",
            "overflowed_from",
            "routed",
            "wrapup_extended",
            "wrapup_until",
            "wrapup_seconds",
            "hold_seconds",
        ):
            batch_op.drop_column(column)
