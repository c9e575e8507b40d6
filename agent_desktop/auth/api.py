"""The login feature's web side: the middleware that authenticates every request, and the
login/logout/me API.

Every route needs a logged-in session (or an API token, see bearer.py) unless its path was
marked public (common/guards.py: mark_public). Unauthenticated page views are redirected to /login;
everything else gets 401. Every unsafe request of a session must carry its CSRF token (see
csrf.py). The threat model and the rules are in docs/security.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from aiohttp import web

import agent_desktop.auth.bearer as bearer
import agent_desktop.auth.csrf as csrf
from agent_desktop.auth.logins import Attempt, LoginSuccess, attempt_login
from agent_desktop.common import sessions
from agent_desktop.common.audit import audit
from agent_desktop.common.errors import IpNotAllowed, NotAuthenticated, PasswordChangeRequired
from agent_desktop.common.guards import (
    ALWAYS_PUBLIC,
    SESSION_KEY,
    USER_KEY,
    context,
    current_session,
    current_user,
    is_public,
    mark_public,
    session_of,
    wants_html,
)
from agent_desktop.common.ipaccess import client_ip, ip_allowed
from agent_desktop.context import AppContext
from crm_core.errors import ValidationError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Open to a user who must change the password first: the change itself, logging out, "who am I".
PASSWORD_CHANGE_PATHS = frozenset(
    {"/account/password", "/api/account/password", "/logout", "/api/logout", "/api/me"}
)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    ctx = context(request)
    public = is_public(request.app, request.path)
    authorization = request.headers.get("Authorization")
    if authorization is not None and not public:
        return await bearer.handle(request, handler, authorization)
    active = None if request.path.startswith("/static/") else await session_of(request)
    if active is not None:
        ip = client_ip(request, ctx.settings)
        if ip_allowed(ctx.settings, ip, active.user.role, active.user.ip_allowlist):
            request[SESSION_KEY], request[USER_KEY] = active, active.user
        elif not public:
            detail = {"path": request.path, "role": active.user.role}
            await audit(ctx, active.user, "ip_refused", "session", str(active.id), ip, detail)
            raise IpNotAllowed(f"access from {ip} is not allowed for {active.user.role} (IP lock)")
        else:
            active = None
    if not public:
        if active is None:
            if wants_html(request):
                raise web.HTTPSeeOther(location="/login?next=" + quote(request.path_qs, safe=""))
            raise NotAuthenticated("log in first: POST /api/login or open /login")
        if csrf.is_unsafe(request):
            csrf.check_origin(request, ctx.settings)
            await csrf.check_session_token(request, active.csrf_token)
        if active.user.must_change_password and request.path not in PASSWORD_CHANGE_PATHS:
            if wants_html(request):
                raise web.HTTPSeeOther(location="/account/password")
            raise PasswordChangeRequired(
                "an administrator set this password: choose your own first "
                "(POST /api/account/password or open /account/password)"
            )
    return await handler(request)


async def log_in(request: web.Request, username: str, password: str) -> LoginSuccess:
    """Check the credentials and open a new session; a previous session of this browser ends
    (no session fixation). The caller sets the cookie on its response."""
    ctx = context(request)
    attempt = Attempt(
        username.strip(), client_ip(request, ctx.settings), request.headers.get("User-Agent")
    )
    success = await attempt_login(ctx.db, attempt, password)
    previous = await session_of(request)
    if previous is not None:
        await sessions.end(ctx.db, previous.id, "replaced")
    return success


async def log_out(request: web.Request) -> None:
    active = current_session(request)
    if active is not None:
        await sessions.end(context(request).db, active.id, "logout")


def _text(body: dict[str, Any], key: str, limit: int) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ValidationError(f"{key} is required (text, at most {limit} characters)", field=key)
    return value


async def api_login(request: web.Request) -> web.Response:
    # JSON only: a cross-site page cannot send application/json without a CORS preflight,
    # which is what keeps this endpoint safe from login CSRF.
    csrf.check_origin(request, context(request).settings)
    if request.content_type != "application/json":
        raise ValidationError("send the credentials as application/json")
    try:
        body = await request.json()
    except ValueError:
        raise ValidationError("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ValidationError("send a JSON object {username, password}")
    success = await log_in(request, _text(body, "username", 64), _text(body, "password", 256))
    response = web.json_response(
        {"csrf_token": success.session.csrf_token, "user": success.session.user.as_dict()}
    )
    sessions.set_cookie(request, response, success.token)
    return response


async def api_logout(request: web.Request) -> web.Response:
    await log_out(request)
    response = web.json_response({"status": "logged_out"})
    sessions.clear_cookie(response)
    return response


async def api_me(request: web.Request) -> web.Response:
    active = current_session(request)  # None for an API token: no session, no CSRF token
    user = current_user(request)
    token = active.csrf_token if active is not None else None
    return web.json_response({"user": user.as_dict(), "csrf_token": token})


def setup(app: web.Application, ctx: AppContext) -> None:
    for prefix in ALWAYS_PUBLIC:
        mark_public(app, prefix)
    bearer.setup(app)
    app.middlewares.append(auth_middleware)
    app.router.add_post("/api/login", api_login)
    app.router.add_post("/api/logout", api_logout)
    app.router.add_get("/api/me", api_me)
