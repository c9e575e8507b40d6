"""`hotline cluster status`: the nodes, the leader of each Asterisk server, who holds each
lease's advisory lock right now, the last heartbeats and where the workers run
(docs/deploy.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import asyncpg

import crm_core.cluster.pg as pg
from crm_core.cluster.nodes import LeaseStatus, NodeStatus, cluster_status, status_rows
from crm_core.settings import Settings


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    try:
        address = pg.dsn(settings)
    except ValueError as exc:
        print(f"hotline: {exc}")
        return 2
    try:
        nodes, leases = asyncio.run(cluster_status(address))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        print(f"hotline: cannot read the cluster's state from PostgreSQL: {exc}")
        return 1
    if args.json:
        print(json.dumps(status_rows(nodes, leases), ensure_ascii=False, indent=2))
    else:
        print(_table(nodes, leases))
    return 0 if any(n.up for n in nodes) else 1


def _table(nodes: list[NodeStatus], leases: list[LeaseStatus]) -> str:
    lines = ["NODE            STATE  HEARTBEAT  DESKTOPS  LEASES                URL"]
    for n in nodes:
        state = "up" if n.up else "DOWN"
        lines.append(
            f"{n.name:<15} {state:<6} {n.heartbeat_age:>7.1f}s  {n.users:>8}  "
            f"{','.join(n.leases) or '-':<21} {n.url}"
        )
    if not nodes:
        lines.append("(no node has started with a node name on this database)")
    lines += ["", "LEASE           HOLDER          EPOCH  HEARTBEAT  LOCK HELD BY"]
    for lease in leases:
        age = "-" if lease.heartbeat_age is None else f"{lease.heartbeat_age:.1f}s"
        held_by = lease.lock_session or "nobody (free: a node takes it within a second)"
        lines.append(
            f"{lease.name:<15} {lease.holder or '-':<15} {lease.epoch:>5}  {age:>9}  {held_by}"
        )
    return "\n".join(lines)


def register(commands: Any) -> None:
    group = commands.add_parser(
        "cluster", help="several nodes on one PostgreSQL (docs/deploy.md)"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    p = group.add_parser("status", help="nodes, leaders, lease holders and heartbeats")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_status)
