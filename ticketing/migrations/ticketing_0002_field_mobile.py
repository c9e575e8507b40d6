"""the technician's mobile page: offers, idempotent field actions, photos and signatures

work_orders.technician_id becomes nullable: an order offered to several technicians has
no technician until one of them takes it (work_order_offers).

Revision ID: ticketing_0002
Revises: ticketing_0001
Create Date: 2026-12-04 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "ticketing_0002"
down_revision = "ticketing_0001"
branch_labels = None
depends_on = None


def _offers() -> None:
    op.create_table(
        "work_order_offers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("work_order_id", sa.Integer(), nullable=False),
        sa.Column("technician_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state in ('open','taken','lost','declined')", name=op.f("ck_work_order_offers_state")
        ),
        sa.ForeignKeyConstraint(
            ["technician_id"], ["users.id"], name=op.f("fk_work_order_offers_technician_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["work_order_id"],
            ["work_orders.id"],
            name=op.f("fk_work_order_offers_work_order_id_work_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_order_offers")),
        sa.UniqueConstraint(
            "work_order_id", "technician_id", name=op.f("uq_work_order_offers_work_order_id")
        ),
    )
    with op.batch_alter_table("work_order_offers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_work_order_offers_technician_id"), ["technician_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_work_order_offers_work_order_id"), ["work_order_id"], unique=False
        )


def _actions() -> None:
    op.create_table(
        "field_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action_id", sa.String(length=64), nullable=False),
        sa.Column("work_order_id", sa.Integer(), nullable=False),
        sa.Column("technician_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("outcome", sa.String(length=30), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["technician_id"], ["users.id"], name=op.f("fk_field_actions_technician_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["work_order_id"],
            ["work_orders.id"],
            name=op.f("fk_field_actions_work_order_id_work_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_field_actions")),
        sa.UniqueConstraint("action_id", name=op.f("uq_field_actions_action_id")),
    )
    with op.batch_alter_table("field_actions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_field_actions_work_order_id"), ["work_order_id"], unique=False
        )


def _files() -> None:
    op.create_table(
        "work_order_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("work_order_id", sa.Integer(), nullable=False),
        sa.Column("technician_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(length=30), nullable=False),
        sa.Column("action_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind in ('photo','signature')", name=op.f("ck_work_order_files_kind")),
        sa.ForeignKeyConstraint(
            ["technician_id"], ["users.id"], name=op.f("fk_work_order_files_technician_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["work_order_id"],
            ["work_orders.id"],
            name=op.f("fk_work_order_files_work_order_id_work_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_order_files")),
    )
    with op.batch_alter_table("work_order_files", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_work_order_files_work_order_id"), ["work_order_id"], unique=False
        )


def upgrade() -> None:
    with op.batch_alter_table("work_orders", schema=None) as batch_op:
        batch_op.alter_column("technician_id", existing_type=sa.Integer(), nullable=True)
    _offers()
    _actions()
    _files()


def downgrade() -> None:
    for table in ("work_order_files", "field_actions", "work_order_offers"):
        op.drop_table(table)
    op.execute("DELETE FROM work_orders WHERE technician_id IS NULL")
    with op.batch_alter_table("work_orders", schema=None) as batch_op:
        batch_op.alter_column("technician_id", existing_type=sa.Integer(), nullable=False)
