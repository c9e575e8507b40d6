"""API tokens in 系统管理: the JSON API under /api/admin/tokens and the page /admin/tokens.

Admins only, like every /api/admin route. A new token is in the create reply and nowhere
else, ever: lists show its prefix and status only.
"""

from __future__ import annotations

from aiohttp import web

import agent_desktop.admin.api as api
import agent_desktop.admin.tokens as tokens
import agent_desktop.admin.users as users
from agent_desktop.common.guards import context, require_roles
from agent_desktop.common.pages import render


@require_roles("admin")
async def list_tokens(request: web.Request) -> web.Response:
    return web.json_response({"tokens": await tokens.list_tokens(context(request).db)})


@require_roles("admin")
async def create_token(request: web.Request) -> web.Response:
    body = await api.body_of(request)
    row, token = await tokens.create_token(context(request).db, api.actor_of(request), body)
    return web.json_response({"token": token, "api_token": row}, status=201)


@require_roles("admin")
async def revoke_token(request: web.Request) -> web.Response:
    db = context(request).db
    row = await tokens.revoke_token(db, api.actor_of(request), api.ref(request))
    return web.json_response({"api_token": row})


@require_roles("admin")
async def tokens_page(request: web.Request) -> web.Response:
    db = context(request).db
    return render(
        request,
        "admin_tokens.html",
        rows=await tokens.list_tokens(db),
        roles=list(users.ROLES),
        usernames=[u["username"] for u in await users.list_users(db, disabled=False)],
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/api/admin/tokens", list_tokens)
    app.router.add_post("/api/admin/tokens", create_token)
    app.router.add_post("/api/admin/tokens/{ref}/revoke", revoke_token)
    app.router.add_get("/admin/tokens", tokens_page)
