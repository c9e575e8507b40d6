"""The contract every feature codes against for who is asking:

    from agent_desktop.common.guards import current_user, require_roles, mark_public
    from agent_desktop.common.guards import authenticate_websocket

The auth feature (agent_desktop/auth/) fills USER_KEY and SESSION_KEY in its middleware;
these helpers read them. Every route needs a logged-in session unless its path was marked
public (mark_public). The threat model and the rules are in docs/security.md.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar, cast

from aiohttp import web

from agent_desktop.common import sessions
from agent_desktop.common.audit import audit
from agent_desktop.common.errors import Forbidden, NotAuthenticated, OriginRefused
from agent_desktop.common.ipaccess import allowed_origins, client_ip, ip_allowed
from agent_desktop.common.sessions import ActiveSession, SessionUser
from agent_desktop.context import CONTEXT_KEY, AppContext
from crm_core.models import Role

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


async def session_of(request: web.Request) -> ActiveSession | None:
    token = request.cookies.get(sessions.COOKIE)
    if not token:
        return None
    ctx = context(request)
    return await sessions.resolve(ctx.db, token, ctx.settings.session_idle_minutes)


async def session_still_active(request: web.Request) -> bool:
    """For long-lived connections (WebSocket): is the handshake's session still valid?"""
    return await session_of(request) is not None


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
        active = await session_of(request)
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
