"""Requests that authenticate with `Authorization: Bearer <token>` (docs/api.md).

The token becomes the request's user (guards.USER_KEY), so route roles and object-level
scopes apply unchanged. No session, so no CSRF check: a bearer token is never sent by a
browser on its own (no ambient authority), and no cookie is ever set for it. Every request
is audited (`api_request`, with the token id and the reply's status); refusals too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

import agent_desktop.common.api_tokens as api_tokens
from agent_desktop.common.audit import audit
from agent_desktop.common.errors import IpNotAllowed, NotAuthenticated, TokenReadOnly
from agent_desktop.common.guards import USER_KEY, context
from agent_desktop.common.ipaccess import client_ip, ip_allowed
from crm_core.errors import HotlineError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LIMITER_KEY = web.AppKey("hotline.api_token_limiter", api_tokens.RateLimiter)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _principal(request: web.Request, header: str) -> api_tokens.Resolved:
    ctx = context(request)
    ip = client_ip(request, ctx.settings)
    try:
        resolved = await api_tokens.resolve(ctx.db, api_tokens.bearer_of(header))
    except NotAuthenticated as exc:
        detail = {"path": request.path, "method": request.method, **exc.details}
        await audit(ctx, None, "token_refused", "api_token", None, ip, detail)
        raise
    user = resolved.user
    if not ip_allowed(ctx.settings, ip, user.role, user.ip_allowlist):
        detail = {"path": request.path, "role": user.role}
        await audit(ctx, user, "ip_refused", "api_token", str(user.token_id), ip, detail)
        raise IpNotAllowed(f"access from {ip} is not allowed for {user.role} (IP lock)")
    return resolved


async def handle(request: web.Request, handler: Handler, header: str) -> web.StreamResponse:
    resolved = await _principal(request, header)
    user = resolved.user
    assert user.token_id is not None
    request[USER_KEY] = user
    status = 500
    try:
        request.app[LIMITER_KEY].take(user.token_id, resolved.rate_per_minute)
        if user.is_service and request.method not in SAFE_METHODS:
            raise TokenReadOnly("a service token only reads; use a personal token for changes")
        response = await handler(request)
        status = response.status
        return response
    except (HotlineError, web.HTTPException) as exc:
        status = exc.status
        raise
    finally:
        ctx = context(request)
        detail = {"method": request.method, "path": request.path, "status": status}
        ip = client_ip(request, ctx.settings)
        await audit(ctx, user, "api_request", "api_token", str(user.token_id), ip, detail)


def setup(app: web.Application) -> None:
    app[LIMITER_KEY] = api_tokens.RateLimiter()
