"""A user's own password change: required after an admin set or reset the password."""

from __future__ import annotations

from aiohttp import web

from agent_desktop.common.audit import audit
from agent_desktop.common.guards import context, current_user
from agent_desktop.common.ipaccess import client_ip
from agent_desktop.common.pages import render
from agent_desktop.context import AppContext
from crm_core.errors import ValidationError
from crm_core.models import ChangeRecord, User
from crm_core.users import check_password_policy, hash_password, verify_password


async def password_page(request: web.Request) -> web.Response:
    return render(
        request, "account_password.html", required=current_user(request).must_change_password
    )


async def change_password(request: web.Request) -> web.Response:
    user = current_user(request)
    try:
        body = await request.json()
    except ValueError:
        raise ValidationError("the body must be a JSON object") from None
    current = body.get("current_password") if isinstance(body, dict) else None
    new = body.get("password") if isinstance(body, dict) else None
    if not isinstance(current, str) or not isinstance(new, str):
        raise ValidationError("send current_password and password", field="password")
    if new == current:
        raise ValidationError("choose a password different from the old one", field="password")
    check_password_policy(new, user.username)
    ctx = context(request)
    async with ctx.db.transaction() as session:
        row = await session.get(User, user.id)
        if row is None or not verify_password(row.password_hash, current):
            raise ValidationError("the current password is wrong", field="current_password")
        row.password_hash = hash_password(new)
        row.must_change_password = False
        session.add(
            ChangeRecord(
                entity="user",
                entity_id=user.id,
                action="password_change",
                user_id=user.id,
                note="own password change",
            )
        )
    ip = client_ip(request, ctx.settings)
    await audit(ctx, user, "password_changed", "user", str(user.id), ip, None)
    return web.json_response({"status": "changed"})


def setup(app: web.Application, ctx: AppContext) -> None:
    app.router.add_get("/account/password", password_page)
    app.router.add_post("/api/account/password", change_password)
