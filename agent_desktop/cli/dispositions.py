"""`hotline dispositions list|add|edit|disable`: the 处理结果 admin page on the command line.

Same service as the page (agent_desktop/admin/dispositions.py): same checks, change record
and audit row, with the shell user as the actor.
"""

from __future__ import annotations

import argparse
from typing import Any

import agent_desktop.admin.dispositions as dispositions
from agent_desktop.admin.actor import Actor
from agent_desktop.cli.admin import _sub, _values, _yes_no
from crm_core.db import Database

KEYS = ("label", "sort", "active")


async def _list(db: Database, args: argparse.Namespace) -> list[dict[str, Any]]:
    return await dispositions.list_codes(db)


async def _add(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    values = {"code": args.code, **_values(args, KEYS)}
    return await dispositions.create_code(db, Actor.shell(), values)


async def _edit(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    return await dispositions.update_code(db, Actor.shell(), args.code, _values(args, KEYS))


async def _disable(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    return await dispositions.set_active(db, Actor.shell(), args.code, False)


def register(commands: Any) -> None:
    group = commands.add_parser(
        "dispositions", help="disposition codes agents pick after a call"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    _sub(group, "list", "list the codes, disabled ones too", _list)
    for action, work in (("add", _add), ("edit", _edit)):
        p = _sub(group, action, f"{action} a code", work)
        p.add_argument("code", help="e.g. parts_enquiry (kept for ever: calls store it)")
        p.add_argument("--label", required=action == "add", help="what agents see, e.g. 配件咨询")
        p.add_argument("--sort", type=int, help="place in the list (smaller first)")
        if action == "edit":
            p.add_argument("--active", type=_yes_no)
    p = _sub(group, "disable", "stop offering a code (old calls keep its label)", _disable)
    p.add_argument("code")
