"""Call-center operations: business hours, holidays and closures per queue, overflow and
callback settings, service-level thresholds, and the configurable disposition codes.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The codes the desktop offered before they became configurable; their labels are the
# seed's words (咨询 / 报修 / 投诉 / 回访 / 其他 and the rest).
DISPOSITIONS = [
    ("consultation", "咨询", 10),
    ("service_request", "报修", 20),
    ("complaint", "投诉", 30),
    ("callback", "回访", 40),
    ("resolved", "已解决", 50),
    ("wrong_number", "打错电话", 60),
    ("other", "其他", 70),
]


def upgrade() -> None:
    with op.batch_alter_table("call_queues") as batch:
        # Empty hours: open around the clock. Format in crm_core/business_hours.py.
        batch.add_column(sa.Column("hours", sa.String(300), nullable=True))
        batch.add_column(
            sa.Column("holiday_calendar", sa.String(10), nullable=False, server_default="cn")
        )
        batch.add_column(sa.Column("overflow_seconds", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("overflow_max_waiting", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("overflow_target", sa.String(60), nullable=True))
        batch.add_column(
            sa.Column("callback_enabled", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("announce_holdtime", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("service_level_seconds", sa.Integer(), nullable=False, server_default="20")
        )
        batch.add_column(
            sa.Column("short_abandon_seconds", sa.Integer(), nullable=False, server_default="5")
        )
    op.create_table(
        "queue_closures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=True),  # empty: every queue
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_queue_closures_period")),
        sa.ForeignKeyConstraint(
            ["queue_id"], ["call_queues.id"], name=op.f("fk_queue_closures_queue_id_call_queues")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_queue_closures_created_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_closures")),
    )
    op.create_index("ix_queue_closures_ends_at", "queue_closures", ["ends_at"])
    codes = op.create_table(
        "disposition_codes",
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("sort", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_disposition_codes")),
    )
    op.bulk_insert(
        codes,
        [{"code": c, "label": label, "sort": s, "active": True} for c, label, s in DISPOSITIONS],
    )


def downgrade() -> None:
    op.drop_table("disposition_codes")
    op.drop_index("ix_queue_closures_ends_at", table_name="queue_closures")
    op.drop_table("queue_closures")
    with op.batch_alter_table("call_queues") as batch:
        for column in (
            "short_abandon_seconds",
            "service_level_seconds",
            "announce_holdtime",
            "callback_enabled",
            "overflow_target",
            "overflow_max_waiting",
            "overflow_seconds",
            "holiday_calendar",
            "hours",
        ):
            batch.drop_column(column)
