"""After-call work on the desktop: the wrap-up service (cti/wrapup.py) wired to the CTI bridge,
the AMI client and the agents' sockets, and its two endpoints:

- GET /api/agent/wrapup: the caller's running wrap-up (a reloaded desktop resumes the
  countdown), or null;
- POST /api/calls/{call_id}/wrap-up/extend: the one extension of that call's wrap-up.

Saving the disposition (POST /api/calls/{call_id}/wrap-up, calls/cti.py) finishes it early.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from sqlalchemy import select

from agent_desktop.common.guards import current_user
from agent_desktop.common.ws_hub import WebSocketHub
from agent_desktop.context import AppContext
from asterisk_conf.render import QueueRow, queue_specs
from crm_core.db import Database
from crm_core.errors import ValidationError
from crm_core.models import CallQueue
from crm_core.settings import Settings
from cti import call_queries
from cti.bridge import CtiBridge
from cti.call_events import AgentCompleted
from cti.queue_membership import ActionSender
from cti.wrapup import SecondsFor, WrapUpService

WRAPUP_KEY = web.AppKey("wrapup_service", WrapUpService)


def seconds_resolver(db: Database, settings: Settings) -> SecondsFor:
    """A queue's wrap-up seconds exactly as queues.conf gets them (`wrapuptime`): the CRM's
    value, else the PBX mode's default."""

    async def seconds_for(queue: str | None) -> int:
        stored = None
        if queue:
            async with db.connect() as conn:
                stored = await conn.scalar(
                    select(CallQueue.wrapup_seconds).where(CallQueue.name == queue)
                )
        row = QueueRow(queue or "hotline", queue or "hotline", "ringall", wrapup_seconds=stored)
        return queue_specs(settings, [row])[0].wrapup_seconds

    return seconds_for


async def current(request: web.Request) -> web.Response:
    wrapup = request.app[WRAPUP_KEY].for_agent(current_user(request).id)
    return web.json_response({"wrapup": wrapup.message() if wrapup else None})


async def extend(request: web.Request) -> web.Response:
    user = current_user(request)
    try:
        call_id = int(request.match_info["call_id"])
    except ValueError:
        raise ValidationError("call id must be a number") from None
    viewer = call_queries.Viewer(user.id, user.role, user.region)
    call = await call_queries.get_call(request.app[WRAPUP_KEY].db, viewer, call_id)
    wrapup = await request.app[WRAPUP_KEY].extend(user.id, call.server, call.linkedid)
    return web.json_response({"wrapup": wrapup.message()})


def setup(
    app: web.Application, ctx: AppContext, bridge: CtiBridge, ami: ActionSender, hub: WebSocketHub
) -> WrapUpService:
    async def resolve(interface: str, member_name: str) -> int | None:
        agent = await bridge.directory.resolve(interface, member_name)
        return agent.user_id if agent else None

    service = WrapUpService(
        ctx.db,
        bridge.agents,
        ami,
        seconds_resolver(ctx.db, ctx.settings),
        resolve,
        hub.send_to_user,
    )
    app[WRAPUP_KEY] = service
    ctx.bus.subscribe(AgentCompleted, service.on_agent_completed)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/api/agent/wrapup", current)
    app.router.add_post(r"/api/calls/{call_id:\d+}/wrap-up/extend", extend)
    return service
