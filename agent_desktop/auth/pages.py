"""Login and logout pages, and the administrator's login history (the seed's 登录历史)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import agent_desktop.auth.csrf as csrf
import agent_desktop.auth.lockout as lockout
from agent_desktop.auth.api import log_in, log_out
from agent_desktop.common import sessions
from agent_desktop.common.audit import audit
from agent_desktop.common.errors import AccountLocked, TooManyAttempts
from agent_desktop.common.guards import current_session, current_user, require_roles
from agent_desktop.common.ipaccess import client_ip
from agent_desktop.common.pages import add_nav, render, safe_next
from agent_desktop.context import CONTEXT_KEY, AppContext
from agent_desktop.models import LoginRecord
from crm_core.errors import HotlineError, NotFound
from crm_core.models import User, utcnow

HISTORY_PAGE = 200


def _login_page(
    request: web.Request, status: int = 200, error: HotlineError | None = None, username: str = ""
) -> web.Response:
    token = csrf.login_form_token(request)
    minutes = 0
    if isinstance(error, AccountLocked | TooManyAttempts):
        minutes = int(error.details.get("minutes", 0))
    response = render(
        request,
        "login.html",
        status=status,
        login_csrf=token,
        error_id=error.error_id if error else None,
        minutes=minutes,
        failures=request.app[CONTEXT_KEY].settings.lockout_failures,
        username=username,
        next=safe_next(request.query.get("next")),
    )
    csrf.set_login_cookie(request, response, token)
    return response


async def login_form(request: web.Request) -> web.StreamResponse:
    if current_session(request) is not None:
        raise web.HTTPSeeOther(location=safe_next(request.query.get("next")))
    return _login_page(request)


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username = str(form.get("username", ""))[:64]
    password = str(form.get("password", ""))[:256]
    try:
        csrf.check_origin(request, request.app[CONTEXT_KEY].settings)
        await csrf.check_login_form(request)
        if not username.strip() or not password:
            return _login_page(request, 422, _Missing("missing"), username)
        success = await log_in(request, username, password)
    except HotlineError as exc:
        return _login_page(request, exc.status, exc, username)
    response = web.HTTPSeeOther(location=safe_next(str(form.get("next", ""))))
    sessions.set_cookie(request, response, success.token)
    raise response


class _Missing(HotlineError):
    status = 422
    error_id = "credentials_missing"


async def logout_submit(request: web.Request) -> web.StreamResponse:
    await log_out(request)
    response = web.HTTPSeeOther(location="/login")
    sessions.clear_cookie(response)
    raise response


@require_roles("admin")
async def login_history(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT_KEY]
    username = request.query.get("username", "").strip()[:64]
    query = select(LoginRecord).order_by(LoginRecord.id.desc()).limit(HISTORY_PAGE)
    if username:
        query = query.where(LoginRecord.username == username)
    now = utcnow()
    async with ctx.db.transaction() as session:
        rows = list((await session.scalars(query)).all())
        locks = await lockout.active_locks(ctx.db, now)
        names = await _usernames(session, {lock.user_id for lock in locks})
    return render(
        request,
        "login_history.html",
        rows=rows,
        locks=[(lock, names.get(lock.user_id, "?")) for lock in locks],
        username=username,
    )


async def _usernames(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await session.execute(select(User.id, User.username).where(User.id.in_(ids)))
    return {r.id: r.username for r in rows}


@require_roles("admin")
async def unlock_user(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT_KEY]
    try:
        user_id = int(request.match_info["user_id"])
    except ValueError:
        raise NotFound("no such user") from None
    if not await lockout.unlock(ctx.db, user_id):
        raise NotFound(f"user {user_id} is not locked")
    await audit(
        ctx,
        current_user(request),
        "account_unlocked",
        "user",
        str(user_id),
        client_ip(request, ctx.settings),
        None,
    )
    if request.headers.get(csrf.HEADER):
        return web.json_response({"status": "unlocked", "user_id": user_id})
    raise web.HTTPSeeOther(location="/login-history")


def setup(app: web.Application, ctx: AppContext) -> None:
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login_submit)
    app.router.add_post("/logout", logout_submit)
    app.router.add_get("/login-history", login_history)
    app.router.add_post("/admin/users/{user_id}/unlock", unlock_user)
    add_nav(app, "/login-history", "Login history", ("admin",))
