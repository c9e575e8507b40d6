"""CLI commands for the CRM core and the server: db, seed, history, customers, serve.
(backup and restore: agent_desktop/cli/backup.py)"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from agent_desktop.customers.merge_wiring import merge_bus  # issue #17 §2
from crm_core import duplicates, history, migrate
from crm_core.db import Database
from crm_core.lookup import lookup_by_number
from crm_core.progress import Progress
from crm_core.search import count_customers, search
from crm_core.seed import seed_customers
from crm_core.settings import Settings
from crm_core.users import ensure_demo_users

Handler = Callable[[Settings, argparse.Namespace], int]


def _with_db(work: Callable[[Database, argparse.Namespace], Awaitable[int]]) -> Handler:
    """Run `work` with an open database that was migrated first, and always close it."""

    def handler(settings: Settings, args: argparse.Namespace) -> int:
        migrate.upgrade(settings)

        async def run() -> int:
            db = Database.open(settings)
            try:
                return await work(db, args)
            finally:
                await db.close()

        return asyncio.run(run())

    return handler


def _print_json(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        print(json.dumps(row, ensure_ascii=False, default=str))


def cmd_db_upgrade(settings: Settings, _args: argparse.Namespace) -> int:
    migrate.upgrade(settings)
    heads = ", ".join(sorted(migrate.head_revisions(settings)))
    print(f"database at revision {heads}: {settings.database_url}")
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be zero or more")
    return value


async def _seed(db: Database, args: argparse.Namespace) -> int:
    logins = await ensure_demo_users(db)
    if args.if_empty and await count_customers(db) > 0:
        print("database already has customers; not seeding")
    elif args.customers:
        bar = Progress("seeding customers", args.customers)
        result = await seed_customers(db, args.customers, args.seed, bar.update)
        bar.finish()
        print(
            f"seeded {result.customers:,} customers, {result.contacts:,} contacts, "
            f"{result.phones:,} phone numbers, {result.vehicles:,} vehicles "
            f"in {result.seconds:.1f}s"
        )
    if args.show_logins:
        print(f"demo logins (password for all: {logins[0].password}):")
        for login in logins:
            print(f"  {login.username:<12} {login.role:<11} {login.phone or ''}")
    return 0


async def _history_list(db: Database, args: argparse.Namespace) -> int:
    entries = await history.list_history(db, args.entity, args.id)
    if not entries:
        print(f"no history for {args.entity} {args.id}")
        return 1
    for e in entries:
        print(
            f"#{e.id:<6} {e.at:%Y-%m-%d %H:%M:%S}Z {e.action:<8} user={e.user_id} "
            f"changed={','.join(e.changed) or '-'} {e.note or ''}"
        )
    return 0


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time like 2026-11-25T08:30:00+08:00"
        ) from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("give a time zone, e.g. 2026-11-25T08:30:00+08:00")
    return value


async def _history_restore(db: Database, args: argparse.Namespace) -> int:
    change = await history.restore(db, args.entity, args.id, change_id=args.to_change, at=args.at)
    print(f"{args.entity} {args.id} restored ({change.note}); recorded as change #{change.id}")
    return 0


async def _search(db: Database, args: argparse.Namespace) -> int:
    _print_json([h.as_dict() for h in await search(db, args.query)])
    return 0


async def _lookup(db: Database, args: argparse.Namespace) -> int:
    _print_json([c.as_dict() for c in await lookup_by_number(db, args.number)])
    return 0


async def _merge(db: Database, args: argparse.Namespace) -> int:
    # issue #17: calls, requests and recordings follow the merge (merge_wiring.py).
    change = await duplicates.merge(db, args.source, args.target, bus=merge_bus(db))
    print(
        f"customer {args.source} merged into {args.target}; undo with "
        f"`hotline customers unmerge {change.id}`"
    )
    return 0


async def _unmerge(db: Database, args: argparse.Namespace) -> int:
    change = await duplicates.unmerge(db, args.change, bus=merge_bus(db))
    print(f"merge undone ({change.note}); recorded as change #{change.id}")
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from agent_desktop.server import serve

    if args.node_name is not None:
        settings = settings.replace(node_name=args.node_name)
    migrate.upgrade(settings)
    return serve(settings)


def register(commands: Any) -> None:
    db = commands.add_parser("db", help="database schema").add_subparsers(
        dest="db_cmd", required=True
    )
    db.add_parser("upgrade", help="apply migrations").set_defaults(handler=cmd_db_upgrade)

    seed = commands.add_parser("seed", help="demo users and deterministic demo customers")
    seed.add_argument("--customers", type=_positive, default=0)
    seed.add_argument("--seed", type=int, default=1, help="random seed (same seed, same data)")
    seed.add_argument("--if-empty", action="store_true", help="only seed an empty database")
    seed.add_argument("--show-logins", action="store_true", help="print the demo logins")
    seed.set_defaults(handler=_with_db(_seed))

    hist = commands.add_parser("history", help="change history").add_subparsers(
        dest="h", required=True
    )
    listing = hist.add_parser("list", help="changes of one record")
    restore = hist.add_parser("restore", help="put a record back to an earlier point")
    for p in (listing, restore):
        p.add_argument("entity", choices=sorted(set(history.ENTITIES) | history.LISTED_ONLY))
        p.add_argument("id", type=int)
    point = restore.add_mutually_exclusive_group(required=True)
    point.add_argument("--to-change", type=int, help="the state right after this change id")
    point.add_argument("--at", type=_when, help="the state at this time (ISO 8601 with zone)")
    listing.set_defaults(handler=_with_db(_history_list))
    restore.set_defaults(handler=_with_db(_history_restore))

    cust = commands.add_parser("customers", help="find and merge customers").add_subparsers(
        dest="c", required=True
    )
    p = cust.add_parser("search", help="name, pinyin, initials, phone, code, VIN tail, plate")
    p.add_argument("query")
    p.set_defaults(handler=_with_db(_search))
    p = cust.add_parser("lookup", help="ranked candidates for a caller number")
    p.add_argument("number")
    p.set_defaults(handler=_with_db(_lookup))
    p = cust.add_parser("merge", help="merge SOURCE into TARGET (reversible)")
    p.add_argument("source", type=int)
    p.add_argument("target", type=int)
    p.set_defaults(handler=_with_db(_merge))
    p = cust.add_parser("unmerge", help="undo a merge by its change id")
    p.add_argument("change", type=int)
    p.set_defaults(handler=_with_db(_unmerge))

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument(
        "--node-name",
        help="run as this node of a cluster on one PostgreSQL (docs/deploy.md); "
        "the setting node_name",
    )
    serve.set_defaults(handler=cmd_serve)
