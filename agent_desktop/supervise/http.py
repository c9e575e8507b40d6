"""POST /api/calls/{linkedid}/spy {"mode": "listen"|"whisper"|"barge", "request_id": ...}:
ring the supervisor's own phone into the agent's call.

Supervisors and admins only; a supervisor with a region only for that region's agents. Every
refusal and every session is in the audit log (`access_denied`, `spy_start`, `spy_end`).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from agent_desktop.common.audit import audit
from agent_desktop.common.guards import current_user, require_roles
from agent_desktop.common.ipaccess import client_ip
from agent_desktop.context import AppContext
from agent_desktop.services import AMI_KEY, BRIDGE_KEY
from crm_core.errors import ValidationError
from cti.call_events import CallEnded
from cti.supervise import SpyNotAllowed, SpyOutOfScope, SpyService, Supervisor

SPY_KEY = web.AppKey("spy_service", SpyService)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ValidationError("the request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ValidationError("the request body must be a JSON object")
    return body


@require_roles("supervisor", "admin")
async def spy(request: web.Request) -> web.Response:
    user = current_user(request)
    body = await _body(request)
    linkedid = request.match_info["linkedid"]
    ip = client_ip(request, request.app[BRIDGE_KEY].db.settings)
    # A click without an id of its own still spies once; a browser retry sends the same id.
    request_id = str(body.get("request_id") or secrets.token_urlsafe(12))
    supervisor = Supervisor(user.id, user.role, user.region, user.phone_interface)
    try:
        result = await request.app[SPY_KEY].start(
            supervisor, linkedid, body.get("mode"), request_id, ip
        )
    except (SpyNotAllowed, SpyOutOfScope) as refused:
        detail = {"path": request.path, "reason": refused.error_id, "mode": body.get("mode")}
        await audit(request.app[BRIDGE_KEY].db, user, "access_denied", "call", linkedid, ip, detail)
        raise
    return web.json_response(result, status=201 if result["new"] else 200)


def setup(app: web.Application, ctx: AppContext) -> None:
    """After calls/: the CTI bridge and the AMI client are on the app by then."""
    bridge = app[BRIDGE_KEY]
    service = SpyService(ctx.db, bridge.tracker, app[AMI_KEY], ctx.settings.pbx_instance)
    app[SPY_KEY] = service
    bridge.event_listeners.append(service.on_event)
    ctx.bus.subscribe(CallEnded, service.on_call_ended)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        yield
        await service.drain()  # the last sessions' end rows, before the database closes

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/api/calls/{linkedid}/spy", spy)
