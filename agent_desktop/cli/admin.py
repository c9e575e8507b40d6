"""`hotline users|agents|queues|offices|technicians`: the admin pages' powers on the command line.

Every command calls the same service functions as the web pages (agent_desktop/admin), so the
validation, the change history and the audit row are the same; the actor is the shell user.
`--json` prints the record(s) as JSON lines for scripts.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from typing import Any

import agent_desktop.admin.agents as agents
import agent_desktop.admin.offices as offices
import agent_desktop.admin.queues as queues
import agent_desktop.admin.technicians as technicians
import agent_desktop.admin.users as users
from agent_desktop.admin.actor import Actor
from agent_desktop.admin.pbx_sync import apply_to_pbx
from agent_desktop.cli.commands import _with_db
from crm_core.db import Database
from crm_core.settings import Settings

Work = Callable[[Database, argparse.Namespace], Awaitable[dict[str, Any] | list[dict[str, Any]]]]
ONE_TIME = ("password", "sip_secret", "token")


def _show(args: argparse.Namespace, result: dict[str, Any] | list[dict[str, Any]]) -> None:
    rows = result if isinstance(result, list) else [result]
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False, default=str))
        return
    for row in rows:
        record = {k: v for k, v in row.items() if k not in ONE_TIME}
        inner = record.get("record", record)
        print("  ".join(f"{k}={_short(v)}" for k, v in inner.items() if v not in (None, "", [])))
        for key in ONE_TIME:
            if row.get(key):
                print(f"{key} (shown once, write it down now): {row[key]}")


def _short(value: object) -> str:
    if isinstance(value, list):
        return ",".join(
            f"{v.get('queue') or v.get('username')}:{v.get('penalty', 0)}"
            if isinstance(v, dict)
            else str(v)
            for v in value
        )
    return str(value)


def _command(work: Work, reload_pbx: bool = False) -> Callable[[Settings, argparse.Namespace], int]:
    inner = _with_db(lambda db, args: _run(work, db, args))

    def handler(settings: Settings, args: argparse.Namespace) -> int:
        code = inner(settings, args)
        if reload_pbx and code == 0:
            outcome = apply_to_pbx(settings)
            message = f"PBX: {outcome.detail}"
            print(json.dumps({"pbx": outcome.as_dict()}) if args.json else message)
            return 1 if outcome.status == "failed" else 0
        return code

    return handler


async def _run(work: Work, db: Database, args: argparse.Namespace) -> int:
    _show(args, await work(db, args))
    return 0


def _values(args: argparse.Namespace, keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


USER_KEYS = ("display_name", "role", "office", "region", "ip_allowlist", "skills", "sticky_owner")


async def _users_add(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    values = {"username": args.username, **_values(args, USER_KEYS)}
    user, shown = await users.create_user(db, Actor.shell(), values, args.password)
    return {**user, "password": shown}


async def _users_list(db: Database, args: argparse.Namespace) -> list[dict[str, Any]]:
    return await users.list_users(db, role=args.role, search=args.search)


async def _users_show(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    return await users.get_user(db, args.user)


async def _users_edit(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    return await users.update_user(db, Actor.shell(), args.user, _values(args, USER_KEYS))


async def _users_disable(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    return await users.set_active(db, Actor.shell(), args.user, False)


async def _users_enable(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    return await users.set_active(db, Actor.shell(), args.user, True)


async def _users_passwd(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    user, shown = await users.reset_password(db, Actor.shell(), args.user, args.password)
    return {**user, "password": shown}


async def _agents_extension(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    user, secret = await agents.assign_extension(db, Actor.shell(), args.user, args.extension)
    return {**user, "sip_secret": secret}


async def _agents_remove(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    return await agents.remove_extension(db, Actor.shell(), args.user)


async def _agents_queues(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    memberships = agents.parse_memberships(args.queues)
    return await agents.set_queues(db, Actor.shell(), args.user, memberships)


async def _agents_list(db: Database, args: argparse.Namespace) -> list[dict[str, Any]]:
    return [u for u in await users.list_users(db) if u["extension"]]


QUEUE_KEYS = (
    "display_name",
    "strategy",
    "ring_seconds",
    "wrapup_seconds",
    "max_wait_seconds",
    "weight",
    "announce_position",
    "announce_frequency",
    "active",
    "hours",
    "holiday_calendar",
    "overflow_seconds",
    "overflow_max_waiting",
    "overflow_target",
    "callback_enabled",
    "announce_holdtime",
    "service_level_seconds",
    "short_abandon_seconds",
)


async def _queues_add(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    values = {"name": args.name, **_values(args, QUEUE_KEYS)}
    return await queues.create_queue(db, Actor.shell(), values)


async def _queues_edit(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    return await queues.update_queue(db, Actor.shell(), args.name, _values(args, QUEUE_KEYS))


async def _queues_list(db: Database, args: argparse.Namespace) -> list[dict[str, Any]]:
    return await queues.list_queues(db)


OFFICE_KEYS = ("region", "dispatcher", "working_hours", "phone", "active")


async def _offices_add(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    values = {"name": args.name, **_values(args, OFFICE_KEYS)}
    return await offices.create_office(db, Actor.shell(), values)


async def _offices_edit(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    return await offices.update_office(db, Actor.shell(), args.name, _values(args, OFFICE_KEYS))


async def _offices_list(db: Database, args: argparse.Namespace) -> list[dict[str, Any]]:
    return await offices.list_offices(db)


TECH_KEYS = ("display_name", "office", "region", "mobile", "skills", "active")


async def _tech_add(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    values = {"username": args.username, **_values(args, TECH_KEYS)}
    tech, shown = await technicians.create_technician(db, Actor.shell(), values)
    return {**tech, "password": shown}


async def _tech_edit(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    values = _values(args, TECH_KEYS)
    return await technicians.update_technician(db, Actor.shell(), args.username, values)


async def _tech_list(db: Database, args: argparse.Namespace) -> list[dict[str, Any]]:
    return await technicians.list_technicians(db, args.office)


def _yes_no(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("yes", "true", "1", "on"):
        return True
    if lowered in ("no", "false", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r}: say yes or no")


def _sub(group: Any, name: str, text: str, work: Work, reload_pbx: bool = False) -> Any:
    parser = group.add_parser(name, help=text)
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    parser.set_defaults(handler=_command(work, reload_pbx))
    return parser


def _user_fields(parser: Any, creating: bool) -> None:
    parser.add_argument("--name", dest="display_name", required=creating, help="display name")
    parser.add_argument("--role", choices=users.ROLES, help="default: agent")
    parser.add_argument("--office", help="an existing office (hotline offices list)")
    parser.add_argument("--region")
    parser.add_argument("--ip-allowlist", help="comma-separated addresses/networks")
    parser.add_argument("--skills")
    parser.add_argument("--sticky-owner", type=_yes_no, help="yes/no")


def _register_users(commands: Any) -> None:
    group = commands.add_parser("users", help="user accounts").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    p = _sub(group, "add", "create a user (must change the password at first login)", _users_add)
    p.add_argument("username")
    _user_fields(p, creating=True)
    p.add_argument("--password", help="initial password (default: generate and show once)")
    p = _sub(group, "list", "list users", _users_list)
    p.add_argument("--role", choices=users.ROLES)
    p.add_argument("--search")
    _sub(group, "show", "one user", _users_show).add_argument("user", help="user name or id")
    p = _sub(group, "edit", "change a user's fields", _users_edit)
    p.add_argument("user", help="user name or id")
    _user_fields(p, creating=False)
    p = _sub(group, "disable", "disable (never delete)", _users_disable, reload_pbx=True)
    p.add_argument("user")
    _sub(group, "enable", "enable again", _users_enable, reload_pbx=True).add_argument("user")
    p = _sub(group, "passwd", "reset a password (forced change at next login)", _users_passwd)
    p.add_argument("user")
    p.add_argument("--password", help="default: generate and show once")


def _register_agents(commands: Any) -> None:
    group = commands.add_parser("agents", help="agents' phones and queues").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    p = _sub(
        group,
        "extension",
        "give a phone extension and a new SIP secret",
        _agents_extension,
        reload_pbx=True,
    )
    p.add_argument("user")
    p.add_argument("extension")
    p = _sub(group, "remove-extension", "take the phone away", _agents_remove, reload_pbx=True)
    p.add_argument("user")
    p = _sub(
        group,
        "queues",
        "set queue memberships, e.g. hotline:0 vip:5",
        _agents_queues,
        reload_pbx=True,
    )
    p.add_argument("user")
    p.add_argument("queues", nargs="*", metavar="QUEUE[:PENALTY]")
    _sub(group, "list", "users with a phone", _agents_list)


def _register_queues(commands: Any) -> None:
    group = commands.add_parser("queues", help="call queues").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    for action, work in (("add", _queues_add), ("edit", _queues_edit)):
        p = _sub(group, action, f"{action} a queue", work, reload_pbx=True)
        p.add_argument("name")
        p.add_argument("--display-name", required=action == "add")
        p.add_argument("--strategy", choices=queues.STRATEGIES)
        for key in (
            "ring_seconds",
            "wrapup_seconds",
            "max_wait_seconds",
            "weight",
            "announce_frequency",
            "overflow_seconds",
            "overflow_max_waiting",
            "service_level_seconds",
            "short_abandon_seconds",
        ):
            p.add_argument("--" + key.replace("_", "-"), type=int)
        for key in ("announce_position", "active", "callback_enabled", "announce_holdtime"):
            p.add_argument("--" + key.replace("_", "-"), type=_yes_no)
        p.add_argument("--hours", help='e.g. "mon-fri 08:30-17:30; sat 09:00-12:00" ("" = 24/7)')
        p.add_argument("--holiday-calendar", choices=("cn", "none"))
        p.add_argument("--overflow-target", help="voicemail, callback or queue:<name>")
    _sub(group, "list", "list queues and members", _queues_list)


def _register_offices(commands: Any) -> None:
    group = commands.add_parser("offices", help="regional service offices").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    for action, work in (("add", _offices_add), ("edit", _offices_edit)):
        p = _sub(group, action, f"{action} an office", work)
        p.add_argument("name")
        p.add_argument("--region")
        p.add_argument("--dispatcher", help="user name of a supervisor or dispatcher")
        p.add_argument("--working-hours", help="e.g. 08:30-17:30")
        p.add_argument("--phone")
        p.add_argument("--active", type=_yes_no)
    _sub(group, "list", "list offices", _offices_list)


def _register_technicians(commands: Any) -> None:
    group = commands.add_parser("technicians", help="field technicians").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    for action, work in (("add", _tech_add), ("edit", _tech_edit)):
        creating = action == "add"
        p = _sub(group, action, f"{action} a technician", work)
        p.add_argument("username")
        p.add_argument("--name", dest="display_name", required=creating)
        p.add_argument("--office", required=creating)
        p.add_argument("--mobile", required=creating)
        p.add_argument("--region")
        p.add_argument("--skills", help="vehicle types, comma-separated")
        if not creating:
            p.add_argument("--active", type=_yes_no)
    p = _sub(group, "list", "list technicians", _tech_list)
    p.add_argument("--office")


def register(commands: Any) -> None:
    _register_users(commands)
    _register_agents(commands)
    _register_queues(commands)
    _register_offices(commands)
    _register_technicians(commands)
