"""Admin pages (系统管理): users, agents' phones and queues, queues, offices, technicians.

The pages are server-rendered lists with forms; the forms post to the JSON API through
static/admin.js, so a page and `curl` go through exactly the same checks.
"""

from __future__ import annotations

from aiohttp import web

import agent_desktop.admin.dispositions as dispositions
import agent_desktop.admin.offices as offices
import agent_desktop.admin.queues as queues
import agent_desktop.admin.technicians as technicians
import agent_desktop.admin.users as users
from agent_desktop.admin.api import history_row
from agent_desktop.common.guards import context, require_roles
from agent_desktop.common.pages import render
from crm_core.history import list_history
from crm_core.models import Role

ROLES = [r.value for r in Role]


@require_roles("admin")
async def index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther(location="/admin/users")


@require_roles("admin")
async def users_page(request: web.Request) -> web.Response:
    db = context(request).db
    return render(
        request,
        "admin_users.html",
        rows=await users.list_users(db, search=request.query.get("q") or None),
        roles=ROLES,
        offices=await offices.office_names(db),
        queues=await queues.list_queues(db),
        q=request.query.get("q", "")[:64],
    )


@require_roles("admin")
async def user_page(request: web.Request) -> web.Response:
    db = context(request).db
    user = await users.get_user(db, request.match_info["ref"][:64])
    history = [history_row(h) for h in await list_history(db, "user", int(user["id"]))]
    return render(
        request,
        "admin_user.html",
        row=user,
        roles=ROLES,
        offices=await offices.office_names(db),
        queues=await queues.list_queues(db),
        member_of={m["queue"]: m["penalty"] for m in user["queues"]},
        history=list(reversed(history)),
    )


@require_roles("admin")
async def queues_page(request: web.Request) -> web.Response:
    db = context(request).db
    return render(
        request,
        "admin_queues.html",
        rows=await queues.list_queues(db),
        strategies=queues.STRATEGIES,
    )


@require_roles("admin")
async def offices_page(request: web.Request) -> web.Response:
    db = context(request).db
    return render(
        request,
        "admin_offices.html",
        rows=await offices.list_offices(db),
        dispatchers=[
            u["username"]
            for u in await users.list_users(db, disabled=False)
            if u["role"] in offices.DISPATCH_ROLES
        ],
    )


@require_roles("admin")
async def technicians_page(request: web.Request) -> web.Response:
    db = context(request).db
    return render(
        request,
        "admin_technicians.html",
        rows=await technicians.list_technicians(db),
        offices=await offices.office_names(db),
    )


@require_roles("admin")
async def dispositions_page(request: web.Request) -> web.Response:
    rows = await dispositions.list_codes(context(request).db)
    return render(request, "admin_dispositions.html", rows=rows)


def setup(app: web.Application) -> None:
    app.router.add_get("/admin", index)
    app.router.add_get("/admin/users", users_page)
    app.router.add_get("/admin/users/{ref}", user_page)
    app.router.add_get("/admin/queues", queues_page)
    app.router.add_get("/admin/offices", offices_page)
    app.router.add_get("/admin/technicians", technicians_page)
    app.router.add_get("/admin/dispositions", dispositions_page)
