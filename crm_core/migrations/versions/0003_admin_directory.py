"""Administration: user flags and new roles, regional offices, call queues and their members.

The two queues every installation had built in (hotline, vip) become rows, and every user who
had a phone becomes a member of both, so an upgraded PBX renders the same queues as before.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OLD_ROLES = "role in ('agent','supervisor','technician','admin')"
NEW_ROLES = "role in ('agent','supervisor','technician','admin','dispatcher','auditor')"


def upgrade() -> None:
    with op.batch_alter_table("users", recreate="auto") as batch:
        batch.add_column(
            sa.Column(
                "must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch.add_column(sa.Column("sip_digest", sa.String(64), nullable=True))
        batch.add_column(
            sa.Column("sticky_owner", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(sa.Column("skills", sa.String(300), nullable=True))
        batch.add_column(sa.Column("ip_allowlist", sa.String(500), nullable=True))
        batch.drop_constraint(op.f("ck_users_role"), type_="check")
        batch.create_check_constraint(op.f("ck_users_role"), sa.text(NEW_ROLES))
    op.create_table(
        "offices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("region", sa.String(100), nullable=True),
        sa.Column("dispatcher_id", sa.Integer(), nullable=True),
        sa.Column("working_hours", sa.String(100), nullable=True),
        sa.Column("phone", sa.String(40), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dispatcher_id"], ["users.id"], name=op.f("fk_offices_dispatcher_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offices")),
        sa.UniqueConstraint("name", name=op.f("uq_offices_name")),
    )
    queues = op.create_table(
        "call_queues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("strategy", sa.String(20), nullable=False),
        sa.Column("ring_seconds", sa.Integer(), nullable=True),
        sa.Column("wrapup_seconds", sa.Integer(), nullable=True),
        sa.Column("max_wait_seconds", sa.Integer(), nullable=True),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("announce_position", sa.Boolean(), nullable=False),
        sa.Column("announce_frequency", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_queues")),
        sa.UniqueConstraint("name", name=op.f("uq_call_queues_name")),
    )
    op.create_table(
        "queue_members",
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("penalty", sa.Integer(), nullable=False),
        sa.CheckConstraint("penalty between 0 and 99", name=op.f("ck_queue_members_penalty")),
        sa.ForeignKeyConstraint(
            ["queue_id"], ["call_queues.id"], name=op.f("fk_queue_members_queue_id_call_queues")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_queue_members_user_id_users")
        ),
        sa.PrimaryKeyConstraint("queue_id", "user_id", name=op.f("pk_queue_members")),
    )
    built_in = [
        (1, "hotline", "400热线", "ringall", 0),
        (2, "vip", "VIP/专属客户", "linear", 10),
    ]
    op.bulk_insert(
        queues,
        [
            {
                "id": qid,
                "name": name,
                "display_name": label,
                "strategy": strategy,
                "weight": weight,
                "announce_position": False,
                "announce_frequency": 0,
                "active": True,
            }
            for qid, name, label, strategy, weight in built_in
        ],
    )
    op.execute(
        "INSERT INTO queue_members (queue_id, user_id, penalty) "
        "SELECT q.id, u.id, 0 FROM call_queues q CROSS JOIN users u "
        "WHERE u.phone_interface IS NOT NULL AND u.phone_interface <> ''"
    )
    if op.get_bind().dialect.name == "postgresql":
        # Explicit ids above leave the sequence behind; the next admin-created queue needs id 3.
        op.execute("SELECT setval('call_queues_id_seq', (SELECT max(id) FROM call_queues))")


def downgrade() -> None:
    op.drop_table("queue_members")
    op.drop_table("call_queues")
    op.drop_table("offices")
    with op.batch_alter_table("users", recreate="auto") as batch:
        batch.drop_constraint(op.f("ck_users_role"), type_="check")
        batch.create_check_constraint(op.f("ck_users_role"), sa.text(OLD_ROLES))
        for column in (
            "ip_allowlist",
            "skills",
            "sticky_owner",
            "sip_digest",
            "must_change_password",
        ):
            batch.drop_column(column)
