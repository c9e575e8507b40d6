"""`hotline tokens add|list|revoke`: API tokens on the command line (docs/api.md).

Same service as the 系统管理 page (agent_desktop/admin/tokens.py): same checks, change record
and audit row, with the shell user as the actor. The token is printed once, by `add`.
"""

from __future__ import annotations

import argparse
from typing import Any

import agent_desktop.admin.tokens as tokens
import agent_desktop.admin.users as users
from agent_desktop.admin.actor import Actor
from agent_desktop.cli.admin import _sub, _values
from crm_core.db import Database

KEYS = ("kind", "user", "role", "region", "office", "rate_per_minute", "expires_in_days")


async def _add(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    values = {"name": args.name, **_values(args, KEYS)}
    row, token = await tokens.create_token(db, Actor.shell(), values)
    return {**row, "token": token}  # printed once, marked "shown once, write it down now"


async def _list(db: Database, args: argparse.Namespace) -> list[dict[str, Any]]:
    return await tokens.list_tokens(db)


async def _revoke(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    return await tokens.revoke_token(db, Actor.shell(), args.token_id)


def register(commands: Any) -> None:
    group = commands.add_parser("tokens", help="API tokens (docs/api.md)").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    p = _sub(group, "add", "create a token (printed once)", _add)
    p.add_argument("name", help="what the token is for, e.g. 'ERP sync'")
    p.add_argument("--kind", choices=tokens.KINDS, default="personal")
    p.add_argument("--user", help="personal: the user it acts as (name or id)")
    p.add_argument("--role", choices=users.ROLES, help="service: the role it has")
    p.add_argument("--region", help="service: only this region's data")
    p.add_argument("--office", help="service: this office")
    p.add_argument("--rate-per-minute", type=int, help=f"default {tokens.DEFAULT_RATE}")
    p.add_argument("--expires-in-days", type=int, help="default: never")
    _sub(group, "list", "list tokens (never the tokens themselves)", _list)
    p = _sub(group, "revoke", "revoke a token for good", _revoke)
    p.add_argument("token_id", help="the token's id (hotline tokens list)")
