"""calls.survey_score, calls.surveyed_at: the caller's IVR satisfaction score belongs to the
call (and through it to its agent and its request).

Revision ID: cti_0003
Revises: cti_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "cti_0003"
down_revision = "cti_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch_op:
        batch_op.add_column(sa.Column("survey_score", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("surveyed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_check_constraint(
            "survey_score", "survey_score is null or survey_score between 1 and 5"
        )


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch_op:
        batch_op.drop_constraint("survey_score", type_="check")
        batch_op.drop_column("surveyed_at")
        batch_op.drop_column("survey_score")
