"""The admin JSON API under /api/admin: every route needs the admin role (a sweep test checks).

Each handler only reads the request, calls the service (the same one `hotline users` etc.
call) and, for a change that the PBX must know, reloads the PBX after the commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

import agent_desktop.admin.agents as agents
import agent_desktop.admin.dispositions as dispositions
import agent_desktop.admin.offices as offices
import agent_desktop.admin.queues as queues
import agent_desktop.admin.technicians as technicians
import agent_desktop.admin.users as users
from agent_desktop.admin.actor import Actor
from agent_desktop.admin.pbx_sync import apply_in_background
from agent_desktop.common.guards import context, current_user, require_roles
from agent_desktop.common.ipaccess import client_ip
from crm_core.errors import ValidationError
from crm_core.history import HistoryEntry, list_history

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BODY_LIMIT = 64 * 1024


def actor_of(request: web.Request) -> Actor:
    user = current_user(request)
    return Actor(user.id, user.username, client_ip(request, context(request).settings), "web")


async def body_of(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > BODY_LIMIT:
        raise ValidationError("the request body is too large")
    try:
        body = await request.json()
    except ValueError:
        raise ValidationError("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ValidationError("the body must be a JSON object")
    return body


def ref(request: web.Request) -> str:
    return request.match_info["ref"][:64]


async def _pbx(request: web.Request) -> dict[str, str]:
    return (await apply_in_background(context(request).settings)).as_dict()


@require_roles("admin")
async def list_users(request: web.Request) -> web.Response:
    rows = await users.list_users(
        context(request).db,
        role=request.query.get("role") or None,
        search=request.query.get("q") or None,
    )
    return web.json_response({"users": rows})


@require_roles("admin")
async def create_user(request: web.Request) -> web.Response:
    body = await body_of(request)
    password = body.pop("password", None) or None
    fields = {k: v for k, v in body.items() if k not in ("extension", "queues")}
    db = context(request).db
    actor = actor_of(request)
    user, shown = await users.create_user(db, actor, fields, password)
    reply: dict[str, Any] = {"user": user, "password": shown}
    # One form may create the user, give the phone and the queues: each step is its own change.
    if body.get("extension"):
        user, reply["sip_secret"] = await agents.assign_extension(
            db, actor, user["id"], body["extension"]
        )
        if body.get("queues"):
            memberships = agents.parse_memberships(_list(body["queues"]))
            user = await agents.set_queues(db, actor, user["id"], memberships)
        reply["user"] = user
        reply["pbx"] = await _pbx(request)
    return web.json_response(reply, status=201)


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise ValidationError("queues must be a list", field="queues")
    return value


@require_roles("admin")
async def get_user(request: web.Request) -> web.Response:
    user = await users.get_user(context(request).db, ref(request))
    history = await list_history(context(request).db, "user", int(user["id"]))
    return web.json_response({"user": user, "history": [history_row(h) for h in history]})


def history_row(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "action": entry.action,
        "at": entry.at.isoformat(),
        "user_id": entry.user_id,
        "note": entry.note,
        "changed": list(entry.changed),
    }


@require_roles("admin")
async def update_user(request: web.Request) -> web.Response:
    body = await body_of(request)
    user = await users.update_user(context(request).db, actor_of(request), ref(request), body)
    return web.json_response({"user": user})


@require_roles("admin")
async def disable_user(request: web.Request) -> web.Response:
    db = context(request).db
    user = await users.set_active(db, actor_of(request), ref(request), False)
    return web.json_response({"user": user, "pbx": await _pbx(request)})


@require_roles("admin")
async def enable_user(request: web.Request) -> web.Response:
    db = context(request).db
    user = await users.set_active(db, actor_of(request), ref(request), True)
    return web.json_response({"user": user, "pbx": await _pbx(request)})


@require_roles("admin")
async def reset_password(request: web.Request) -> web.Response:
    body = await body_of(request)
    password = body.get("password") or None
    if password is not None and not isinstance(password, str):
        raise ValidationError("password must be text", field="password")
    db = context(request).db
    user, shown = await users.reset_password(db, actor_of(request), ref(request), password)
    return web.json_response({"user": user, "password": shown})


@require_roles("admin")
async def put_extension(request: web.Request) -> web.Response:
    body = await body_of(request)
    db = context(request).db
    user, secret = await agents.assign_extension(
        db, actor_of(request), ref(request), body.get("extension")
    )
    return web.json_response({"user": user, "sip_secret": secret, "pbx": await _pbx(request)})


@require_roles("admin")
async def delete_extension(request: web.Request) -> web.Response:
    user = await agents.remove_extension(context(request).db, actor_of(request), ref(request))
    return web.json_response({"user": user, "pbx": await _pbx(request)})


@require_roles("admin")
async def put_queues(request: web.Request) -> web.Response:
    body = await body_of(request)
    memberships = agents.parse_memberships(_list(body.get("queues", [])))
    db = context(request).db
    user = await agents.set_queues(db, actor_of(request), ref(request), memberships)
    return web.json_response({"user": user, "pbx": await _pbx(request)})


@require_roles("admin")
async def list_queues(request: web.Request) -> web.Response:
    return web.json_response({"queues": await queues.list_queues(context(request).db)})


@require_roles("admin")
async def create_queue(request: web.Request) -> web.Response:
    body = await body_of(request)
    queue = await queues.create_queue(context(request).db, actor_of(request), body)
    return web.json_response({"queue": queue, "pbx": await _pbx(request)}, status=201)


@require_roles("admin")
async def update_queue(request: web.Request) -> web.Response:
    body = await body_of(request)
    queue = await queues.update_queue(context(request).db, actor_of(request), ref(request), body)
    return web.json_response({"queue": queue, "pbx": await _pbx(request)})


@require_roles("admin")
async def list_offices(request: web.Request) -> web.Response:
    return web.json_response({"offices": await offices.list_offices(context(request).db)})


@require_roles("admin")
async def create_office(request: web.Request) -> web.Response:
    body = await body_of(request)
    office = await offices.create_office(context(request).db, actor_of(request), body)
    return web.json_response({"office": office}, status=201)


@require_roles("admin")
async def update_office(request: web.Request) -> web.Response:
    body = await body_of(request)
    db = context(request).db
    office = await offices.update_office(db, actor_of(request), ref(request), body)
    return web.json_response({"office": office})


@require_roles("admin")
async def list_technicians(request: web.Request) -> web.Response:
    rows = await technicians.list_technicians(
        context(request).db, request.query.get("office") or None
    )
    return web.json_response({"technicians": rows})


@require_roles("admin")
async def create_technician(request: web.Request) -> web.Response:
    body = await body_of(request)
    db = context(request).db
    tech, shown = await technicians.create_technician(db, actor_of(request), body)
    return web.json_response({"technician": tech, "password": shown}, status=201)


@require_roles("admin")
async def update_technician(request: web.Request) -> web.Response:
    body = await body_of(request)
    db = context(request).db
    tech = await technicians.update_technician(db, actor_of(request), ref(request), body)
    return web.json_response({"technician": tech})


@require_roles("admin")
async def list_dispositions(request: web.Request) -> web.Response:
    return web.json_response({"dispositions": await dispositions.list_codes(context(request).db)})


@require_roles("admin")
async def create_disposition(request: web.Request) -> web.Response:
    body = await body_of(request)
    row = await dispositions.create_code(context(request).db, actor_of(request), body)
    return web.json_response({"disposition": row}, status=201)


@require_roles("admin")
async def update_disposition(request: web.Request) -> web.Response:
    body = await body_of(request)
    db = context(request).db
    row = await dispositions.update_code(db, actor_of(request), ref(request), body)
    return web.json_response({"disposition": row})


@require_roles("admin")
async def disable_disposition(request: web.Request) -> web.Response:
    db = context(request).db
    row = await dispositions.set_active(db, actor_of(request), ref(request), False)
    return web.json_response({"disposition": row})


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/api/admin/users", list_users),
    ("POST", "/api/admin/users", create_user),
    ("GET", "/api/admin/users/{ref}", get_user),
    ("PATCH", "/api/admin/users/{ref}", update_user),
    ("POST", "/api/admin/users/{ref}/disable", disable_user),
    ("POST", "/api/admin/users/{ref}/enable", enable_user),
    ("POST", "/api/admin/users/{ref}/password", reset_password),
    ("PUT", "/api/admin/users/{ref}/extension", put_extension),
    ("DELETE", "/api/admin/users/{ref}/extension", delete_extension),
    ("PUT", "/api/admin/users/{ref}/queues", put_queues),
    ("GET", "/api/admin/queues", list_queues),
    ("POST", "/api/admin/queues", create_queue),
    ("PATCH", "/api/admin/queues/{ref}", update_queue),
    ("GET", "/api/admin/offices", list_offices),
    ("POST", "/api/admin/offices", create_office),
    ("PATCH", "/api/admin/offices/{ref}", update_office),
    ("GET", "/api/admin/technicians", list_technicians),
    ("POST", "/api/admin/technicians", create_technician),
    ("PATCH", "/api/admin/technicians/{ref}", update_technician),
    ("GET", "/api/admin/dispositions", list_dispositions),
    ("POST", "/api/admin/dispositions", create_disposition),
    ("PATCH", "/api/admin/dispositions/{ref}", update_disposition),
    ("POST", "/api/admin/dispositions/{ref}/disable", disable_disposition),
]


def setup(app: web.Application) -> None:
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
