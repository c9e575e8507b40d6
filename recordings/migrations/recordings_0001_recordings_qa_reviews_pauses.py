"""recordings, qa reviews, pauses

Revision ID: recordings_0001
Revises: 0001
Create Date: 2026-11-25 02:05:52.080957
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "recordings_0001"
down_revision = "0001"
branch_labels = ("recordings",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qa_criteria",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_criteria")),
    )
    op.create_table(
        "recording_pauses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("server", sa.String(length=40), nullable=False),
        sa.Column("linkedid", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resumed_by", sa.String(length=12), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_recording_pauses_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_pauses")),
    )
    with op.batch_alter_table("recording_pauses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_recording_pauses_linkedid"), ["linkedid"], unique=False
        )

    op.create_table(
        "recordings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("server", sa.String(length=40), nullable=False),
        sa.Column("source_path", sa.String(length=300), nullable=False),
        sa.Column("linkedid", sa.String(length=40), nullable=True),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("queue", sa.String(length=40), nullable=True),
        sa.Column("service_request_id", sa.Integer(), nullable=True),
        sa.Column("direction", sa.String(length=10), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("talk_seconds", sa.Float(), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("wav_path", sa.String(length=300), nullable=True),
        sa.Column("opus_path", sa.String(length=300), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("rms", sa.Float(), nullable=True),
        sa.Column("peaks", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=40), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("hold_reason", sa.String(length=200), nullable=True),
        sa.Column("hold_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["users.id"], name=op.f("fk_recordings_agent_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_recordings_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["hold_by"], ["users.id"], name=op.f("fk_recordings_hold_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
        sa.UniqueConstraint("source_path", name=op.f("uq_recordings_source_path")),
    )
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recordings_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_recordings_call_id"), ["call_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_recordings_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_recordings_ended_at"), ["ended_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_recordings_linkedid"), ["linkedid"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_recordings_service_request_id"), ["service_request_id"], unique=False
        )
        batch_op.create_index("ix_recordings_state_ended", ["state", "ended_at"], unique=False)

    op.create_table(
        "qa_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("amends_id", sa.Integer(), nullable=True),
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("comments", sa.JSON(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["users.id"], name=op.f("fk_qa_reviews_agent_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["amends_id"], ["qa_reviews.id"], name=op.f("fk_qa_reviews_amends_id_qa_reviews")
        ),
        sa.ForeignKeyConstraint(
            ["recording_id"], ["recordings.id"], name=op.f("fk_qa_reviews_recording_id_recordings")
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"], ["users.id"], name=op.f("fk_qa_reviews_reviewer_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_reviews")),
        sa.UniqueConstraint("amends_id", name=op.f("uq_qa_reviews_amends_id")),
        sa.UniqueConstraint("recording_id", "version", name="uq_qa_reviews_version"),
    )
    with op.batch_alter_table("qa_reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qa_reviews_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_qa_reviews_recording_id"), ["recording_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("qa_reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qa_reviews_recording_id"))
        batch_op.drop_index(batch_op.f("ix_qa_reviews_agent_id"))

    op.drop_table("qa_reviews")
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_index("ix_recordings_state_ended")
        batch_op.drop_index(batch_op.f("ix_recordings_service_request_id"))
        batch_op.drop_index(batch_op.f("ix_recordings_linkedid"))
        batch_op.drop_index(batch_op.f("ix_recordings_ended_at"))
        batch_op.drop_index(batch_op.f("ix_recordings_customer_id"))
        batch_op.drop_index(batch_op.f("ix_recordings_call_id"))
        batch_op.drop_index(batch_op.f("ix_recordings_agent_id"))

    op.drop_table("recordings")
    with op.batch_alter_table("recording_pauses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recording_pauses_linkedid"))

    op.drop_table("recording_pauses")
    op.drop_table("qa_criteria")
