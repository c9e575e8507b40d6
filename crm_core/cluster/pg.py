"""Raw asyncpg connections for the cluster's long-lived sessions.

The lease and the LISTEN need one dedicated session each, outside SQLAlchemy's pool: a
session-level advisory lock belongs to its connection, and a pooled connection would be
reset (and its lock kept or lost at random) when it went back to the pool.
"""

from __future__ import annotations

import hashlib

import asyncpg

from crm_core.settings import Settings

CONNECT_TIMEOUT = 3.0
# The server notices a vanished client (host gone, cable cut) within idle + interval × count
# seconds and drops its session, which releases the lease for another node.
SERVER_KEEPALIVES = {
    "tcp_keepalives_idle": "2",
    "tcp_keepalives_interval": "1",
    "tcp_keepalives_count": "2",
}


def dsn(settings: Settings) -> str:
    """The libpq form of the SQLAlchemy URL (`postgresql+asyncpg://` → `postgresql://`)."""
    url = settings.database_url
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith("postgresql"):
        raise ValueError("a cluster needs PostgreSQL: set DATABASE_URL to postgresql+asyncpg://…")
    return f"postgresql://{rest}"


async def connect(
    address: str, application: str, idle_timeout: float | None = None
) -> asyncpg.Connection:
    """`idle_timeout`: the server ends the session after that many idle seconds. A lease
    holder's session is never idle that long while the holder lives (it heartbeats), so a
    hung holder (stopped, swapping, stuck loop) loses the lease too, not only a dead one."""
    settings = {"application_name": application[:63], **SERVER_KEEPALIVES}
    if idle_timeout is not None:
        settings["idle_session_timeout"] = str(int(idle_timeout * 1000))
    conn: asyncpg.Connection = await asyncpg.connect(
        address, timeout=CONNECT_TIMEOUT, server_settings=settings
    )
    return conn


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a lease name (hashtext() may change
    between PostgreSQL versions; two node versions must agree on the key)."""
    digest = hashlib.sha256(f"hotline.lease:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
