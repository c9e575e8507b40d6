"""Several `hotline serve` nodes on one PostgreSQL (issue #19): leases with their fencing
epochs, the nodes' heartbeats and presence, and the large fan-out messages that do not fit
in a NOTIFY payload.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per lease ("ami:<server>", "workers"). The advisory lock is the lease; the
    # epoch goes up at every takeover, and the call-state writers check it (fencing).
    op.create_table(
        "cluster_leases",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("epoch", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("holder", sa.String(100), nullable=True),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "cluster_nodes",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("url", sa.String(200), nullable=False, server_default=""),
        sa.Column("pid", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leases", sa.String(500), nullable=False, server_default=""),
        # JSON list of the user ids with a desktop open on this node (presence).
        sa.Column("users", sa.Text(), nullable=False, server_default="[]"),
    )
    op.create_table(
        "cluster_messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_cluster_messages_created_at", "cluster_messages", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_cluster_messages_created_at", "cluster_messages")
    op.drop_table("cluster_messages")
    op.drop_table("cluster_nodes")
    op.drop_table("cluster_leases")
