"""Authentication for every request, and the contract other features code against.

    from agent_desktop.auth import SessionUser, current_user, require_roles, mark_public
    from agent_desktop.auth import authenticate_websocket, audit

Every route needs a logged-in session unless its path was marked public (mark_public).
Unauthenticated page views are redirected to /login; everything else gets 401. Every unsafe
request of a session must carry its CSRF token (see csrf.py). The threat model and the
rules are in docs/security.md.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast
from urllib.parse import quote

from aiohttp import web

from agent_desktop import csrf, sessions
from agent_desktop.audit import audit
from agent_desktop.auth_errors import (
    Forbidden,
    IpNotAllowed,
    NotAuthenticated,
    OriginRefused,
)
from agent_desktop.ipaccess import allowed_origins, client_ip, ip_allowed
from agent_desktop.logins import Attempt, LoginSuccess, attempt_login
from agent_desktop.server import CONTEXT_KEY, AppContext
from agent_desktop.sessions import ActiveSession, SessionUser
from crm_core.errors import ValidationError
from crm_core.models import Role

__all__ = [
    "SessionUser",
    "audit",
    "authenticate_websocket",
    "current_session",
    "current_user",
    "mark_public",
    "require_roles",
    "session_still_active",
    "setup",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)
USER_KEY = web.RequestKey("hotline.user", SessionUser)
SESSION_KEY = web.RequestKey("hotline.session", ActiveSession)
ALWAYS_PUBLIC = ("/login", "/api/login", "/healthz", "/static", "/lang")


@dataclass
class PublicPaths:
    prefixes: list[str] = field(default_factory=list)


PUBLIC_KEY = web.AppKey("hotline.public_paths", PublicPaths)


def mark_public(app: web.Application, prefix: str) -> None:
    """Let `prefix` and everything under it through without a session (webhooks, probes).
    "/sms" covers "/sms" and "/sms/...", never "/smsx". Such routes carry their own checks."""
    if not prefix.startswith("/"):
        raise ValueError(f"a public path starts with '/': {prefix!r}")
    if PUBLIC_KEY not in app:
        app[PUBLIC_KEY] = PublicPaths()
    app[PUBLIC_KEY].prefixes.append(prefix.rstrip("/") or "/")


def is_public(app: web.Application, path: str) -> bool:
    public = app.get(PUBLIC_KEY)
    prefixes = public.prefixes if public else list(ALWAYS_PUBLIC)
    return any(path == p or path.startswith(p + "/") for p in prefixes if p != "/")


def context(request: web.Request) -> AppContext:
    return request.app[CONTEXT_KEY]


def current_user(request: web.Request) -> SessionUser:
    """The logged-in user of this request; raises NotAuthenticated on a public route."""
    if USER_KEY not in request:
        raise NotAuthenticated("log in first: POST /api/login or open /login")
    return request[USER_KEY]


def current_session(request: web.Request) -> ActiveSession | None:
    active: ActiveSession | None = request.get(SESSION_KEY)
    return active


def require_roles(*roles: str) -> Callable[[H], H]:
    """Only these roles may call the handler; anyone else gets 403 and an audit row."""
    unknown = set(roles) - {r.value for r in Role}
    if not roles or unknown:
        raise ValueError(f"require_roles needs known roles, got {roles!r}")

    def decorate(handler: H) -> H:
        @functools.wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            user = current_user(request)
            if user.role not in roles:
                ctx = context(request)
                await audit(
                    ctx,
                    user,
                    "access_denied",
                    "route",
                    request.path,
                    client_ip(request, ctx.settings),
                    {"method": request.method, "required_roles": list(roles)},
                )
                raise Forbidden(f"this needs the role {' or '.join(roles)}")
            return await handler(request)

        return cast(H, checked)

    return decorate


async def _session_of(request: web.Request) -> ActiveSession | None:
    token = request.cookies.get(sessions.COOKIE)
    if not token:
        return None
    ctx = context(request)
    return await sessions.resolve(ctx.db, token, ctx.settings.session_idle_minutes)


async def session_still_active(request: web.Request) -> bool:
    """For long-lived connections (WebSocket): is the handshake's session still valid?"""
    return await _session_of(request) is not None


async def authenticate_websocket(request: web.Request) -> SessionUser:
    """Call before `WebSocketResponse.prepare`: checks the Origin against allowed_origins
    (browsers always send one; a missing Origin is refused too) and the session cookie.
    Refusals raise 403/401 before the upgrade and are audited."""
    ctx = context(request)
    ip = client_ip(request, ctx.settings)
    origin = request.headers.get("Origin", "")
    user: SessionUser | None = request.get(USER_KEY)
    if origin.rstrip("/") not in allowed_origins(ctx.settings):
        detail = {"reason": "origin", "origin": origin or None, "path": request.path}
        await audit(ctx, user, "websocket_refused", "websocket", request.path, ip, detail)
        raise OriginRefused(f"WebSocket from origin {origin or '(none)'} refused")
    if user is None:
        active = await _session_of(request)
        if active is None or not ip_allowed(ctx.settings, ip, active.user.role):
            detail = {"reason": "session", "path": request.path}
            await audit(ctx, None, "websocket_refused", "websocket", request.path, ip, detail)
            raise NotAuthenticated("the WebSocket needs a logged-in session")
        request[SESSION_KEY], request[USER_KEY] = active, active.user
        user = active.user
    return user


def wants_html(request: web.Request) -> bool:
    return (
        request.method in ("GET", "HEAD")
        and not request.path.startswith("/api/")
        and "text/html" in request.headers.get("Accept", "")
    )


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    ctx = context(request)
    public = is_public(request.app, request.path)
    active = None if request.path.startswith("/static/") else await _session_of(request)
    if active is not None:
        ip = client_ip(request, ctx.settings)
        if ip_allowed(ctx.settings, ip, active.user.role):
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
    return await handler(request)


async def log_in(request: web.Request, username: str, password: str) -> LoginSuccess:
    """Check the credentials and open a new session; a previous session of this browser ends
    (no session fixation). The caller sets the cookie on its response."""
    ctx = context(request)
    attempt = Attempt(
        username.strip(), client_ip(request, ctx.settings), request.headers.get("User-Agent")
    )
    success = await attempt_login(ctx.db, attempt, password)
    previous = await _session_of(request)
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
    active = current_session(request)
    assert active is not None  # the middleware let the request through
    return web.json_response({"user": active.user.as_dict(), "csrf_token": active.csrf_token})


def setup(app: web.Application, ctx: AppContext) -> None:
    for prefix in ALWAYS_PUBLIC:
        mark_public(app, prefix)
    app.middlewares.append(auth_middleware)
    app.router.add_post("/api/login", api_login)
    app.router.add_post("/api/logout", api_logout)
    app.router.add_get("/api/me", api_me)
