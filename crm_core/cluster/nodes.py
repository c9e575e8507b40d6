"""Each node's heartbeat row (who is up, what it holds, which desktops it serves) and the
cluster's status as `hotline cluster status` and the health endpoint show it."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

import crm_core.cluster.pg as pg

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 2.0
# A node whose heartbeat is older than this is shown as down.
STALE_SECONDS = 10.0
MESSAGES_KEPT_SECONDS = 600

BEAT = """
INSERT INTO cluster_nodes (name, url, pid, started_at, heartbeat_at, leases, users)
VALUES ($1, $2, $3, now(), now(), $4, $5)
ON CONFLICT (name) DO UPDATE
   SET url = $2, pid = $3, heartbeat_at = now(), leases = $4, users = $5,
       started_at = CASE WHEN cluster_nodes.pid = $3 THEN cluster_nodes.started_at
                         ELSE now() END
"""


class NodeRegistry:
    def __init__(
        self,
        address: str,
        node: str,
        url: str,
        leases: Callable[[], list[str]],
        users: Callable[[], list[int]],
    ) -> None:
        self.address = address
        self.node = node
        self.url = url
        self.leases = leases
        self.users = users
        self.beats = 0
        # Presence everywhere: user id → the node(s) holding a desktop of theirs.
        self.presence: dict[int, list[str]] = {}

    async def run(self) -> None:
        conn: asyncpg.Connection | None = None
        while True:
            try:
                if conn is None or conn.is_closed():
                    conn = await pg.connect(self.address, f"hotline {self.node} heartbeat")
                async with asyncio.timeout(5.0):
                    await self._beat(conn)
            except asyncio.CancelledError:
                if conn is not None:
                    conn.terminate()
                raise
            except Exception as exc:
                log.warning("node heartbeat: %s: %s", type(exc).__name__, exc)
                if conn is not None:
                    conn.terminate()
                conn = None
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def _beat(self, conn: asyncpg.Connection) -> None:
        leases = ",".join(sorted(self.leases()))
        users = json.dumps(sorted(self.users()))
        await conn.execute(BEAT, self.node, self.url, os.getpid(), leases, users)
        rows = await conn.fetch(
            "SELECT name, users FROM cluster_nodes"
            " WHERE heartbeat_at > now() - make_interval(secs => $1)",
            STALE_SECONDS,
        )
        presence: dict[int, list[str]] = {}
        for row in rows:
            for user_id in json.loads(row["users"] or "[]"):
                presence.setdefault(int(user_id), []).append(str(row["name"]))
        self.presence = presence
        self.beats += 1
        if self.beats % 30 == 1:  # about once a minute: large fan-out bodies already read
            await conn.execute(
                "DELETE FROM cluster_messages WHERE created_at < now() - make_interval(secs => $1)",
                MESSAGES_KEPT_SECONDS,
            )


@dataclass
class NodeStatus:
    name: str
    url: str
    pid: int
    started_at: datetime
    heartbeat_age: float
    leases: list[str]
    users: int

    @property
    def up(self) -> bool:
        return self.heartbeat_age <= STALE_SECONDS


@dataclass
class LeaseStatus:
    name: str
    holder: str | None
    epoch: int
    heartbeat_age: float | None
    # The session that really holds the advisory lock right now, from pg_locks.
    lock_session: str | None


async def cluster_status(address: str) -> tuple[list[NodeStatus], list[LeaseStatus]]:
    conn = await pg.connect(address, "hotline cluster status")
    try:
        nodes = await conn.fetch(
            "SELECT name, url, pid, started_at, leases, users,"
            " extract(epoch FROM now() - heartbeat_at) AS age"
            " FROM cluster_nodes ORDER BY name"
        )
        leases = await conn.fetch(
            "SELECT name, holder, epoch, extract(epoch FROM now() - heartbeat_at) AS age"
            " FROM cluster_leases ORDER BY name"
        )
        holders = await _lock_holders(conn, [str(r["name"]) for r in leases])
    finally:
        await conn.close()
    return (
        [
            NodeStatus(
                str(r["name"]),
                str(r["url"]),
                int(r["pid"]),
                r["started_at"],
                float(r["age"]),
                [x for x in str(r["leases"]).split(",") if x],
                len(json.loads(r["users"] or "[]")),
            )
            for r in nodes
        ],
        [
            LeaseStatus(
                str(r["name"]),
                r["holder"],
                int(r["epoch"]),
                None if r["age"] is None else float(r["age"]),
                holders.get(str(r["name"])),
            )
            for r in leases
        ],
    )


async def _lock_holders(conn: asyncpg.Connection, names: list[str]) -> dict[str, str]:
    """Lease name → the application_name of the session holding its advisory lock."""
    rows = await conn.fetch(
        "SELECT ((l.classid::bigint << 32) | l.objid::bigint) AS key, a.application_name"
        " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
    )
    by_key: dict[int, str] = {}
    for row in rows:
        key = int(row["key"])
        signed = key - (1 << 64) if key >= (1 << 63) else key
        by_key[signed] = str(row["application_name"])
    return {name: by_key[pg.lock_key(name)] for name in names if pg.lock_key(name) in by_key}


def status_rows(nodes: list[NodeStatus], leases: list[LeaseStatus]) -> dict[str, Any]:
    """The status as plain data (JSON output, the health endpoint)."""
    return {
        "nodes": [
            {
                "name": n.name,
                "url": n.url,
                "pid": n.pid,
                "up": n.up,
                "heartbeat_age_s": round(n.heartbeat_age, 1),
                "leases": n.leases,
                "desktops": n.users,
                "started_at": n.started_at.isoformat(),
            }
            for n in nodes
        ],
        "leases": [
            {
                "name": lease.name,
                "holder": lease.holder,
                "epoch": lease.epoch,
                "heartbeat_age_s": None
                if lease.heartbeat_age is None
                else round(lease.heartbeat_age, 1),
                "lock_session": lease.lock_session,
            }
            for lease in leases
        ],
    }
