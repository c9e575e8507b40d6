"""Wires the CTI bridge into the web app: AMI client, pops over /ws, call log and dial APIs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

import agent_desktop.calls.wrapup as wrapup
from agent_desktop.calls.cluster_wiring import follow_until_leading, wire_cluster
from agent_desktop.calls.desk_socket import wire_hub
from agent_desktop.calls.pbx_access import give_pbx_access
from agent_desktop.common.guards import authenticate_websocket, current_user
from agent_desktop.common.ws_hub import WebSocketHub
from agent_desktop.context import AppContext
from agent_desktop.services import AMI_KEY, BRIDGE_KEY, HUB_KEY
from asterisk_conf.prompts import PROMPTS
from crm_core.errors import ValidationError
from cti import call_queries, queue_membership
from cti.agi_handlers import build_agi_server
from cti.ami_client import AmiClient, servers_from_settings
from cti.bridge import CtiBridge
from cti.click_to_dial import click_to_dial
from cti.request_links import follow_link_requests
from cti.surveys import follow_surveys

log = logging.getLogger(__name__)


def _viewer(request: web.Request) -> call_queries.Viewer:
    user = current_user(request)
    return call_queries.Viewer(user.id, user.role, user.region)


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ValidationError("the request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ValidationError("the request body must be a JSON object")
    return body


async def websocket(request: web.Request) -> web.StreamResponse:
    user = await authenticate_websocket(request)
    return await request.app[HUB_KEY].serve(request, user.id)


async def dial(request: web.Request) -> web.Response:
    user = current_user(request)
    body = await _json(request)
    customer = body.get("customer_id")
    result = await click_to_dial(
        request.app[BRIDGE_KEY].db,
        request.app[AMI_KEY],
        server=request.app[BRIDGE_KEY].db.settings.pbx_instance,
        agent_id=user.id,
        interface=user.phone_interface,
        number=str(body.get("number", "")),
        request_id=str(body.get("request_id", "")),
        customer_id=customer if isinstance(customer, int) else None,
    )
    return web.json_response(result, status=201 if result["new"] else 200)


def _call_id(request: web.Request) -> int:
    try:
        return int(request.match_info["call_id"])
    except ValueError:
        raise ValidationError("call id must be a number") from None


async def wrap_up(request: web.Request) -> web.Response:
    body = await _json(request)
    call = await call_queries.set_disposition(
        request.app[BRIDGE_KEY].db,
        _viewer(request),
        _call_id(request),
        str(body.get("disposition", "")),
        str(body.get("note", "")),
    )
    # Picking the disposition and saving is what finishes after-call work in a call center:
    # the countdown stops and wrapup_seconds is the time it really took. Asterisk's own
    # wrapuptime still runs to its end (AMI cannot shorten it); an extension's pause ends now.
    await request.app[wrapup.WRAPUP_KEY].finish_call(call.server, call.linkedid)
    return web.json_response(call_queries.call_row(call))


async def get_call(request: web.Request) -> web.Response:
    call = await call_queries.get_call(
        request.app[BRIDGE_KEY].db, _viewer(request), _call_id(request)
    )
    return web.json_response(call_queries.call_row(call))


async def unprocessed(request: web.Request) -> web.Response:
    db, viewer = request.app[BRIDGE_KEY].db, _viewer(request)
    body: dict[str, Any] = {"mine": await call_queries.my_unprocessed(db, viewer)}
    if viewer.role in ("supervisor", "admin"):
        body["by_agent"] = await call_queries.unprocessed_by_agent(db, viewer)
    return web.json_response(body)


async def callbacks(request: web.Request) -> web.Response:
    rows = await call_queries.callback_list(request.app[BRIDGE_KEY].db, _viewer(request))
    return web.json_response({"calls": rows})


async def called_back(request: web.Request) -> web.Response:
    await call_queries.get_call(request.app[BRIDGE_KEY].db, _viewer(request), _call_id(request))
    await call_queries.mark_called_back(request.app[BRIDGE_KEY].db, _call_id(request))
    return web.json_response({"ok": True})


async def agent_state(request: web.Request) -> web.Response:
    user = current_user(request)
    members = request.app[BRIDGE_KEY].agents.for_interface(user.phone_interface or "")
    return web.json_response({"members": [m.as_dict() for m in members]})


async def pause(request: web.Request) -> web.Response:
    user = current_user(request)
    body = await _json(request)
    reason = str(body.get("reason", ""))[:60]
    paused = bool(body.get("paused", True))
    server = request.app[BRIDGE_KEY].db.settings.pbx_instance
    await queue_membership.set_pause(
        request.app[AMI_KEY], server, user.phone_interface, paused, reason
    )
    return web.json_response({"paused": paused, "reason": reason})


async def queue_login(request: web.Request) -> web.Response:
    user = current_user(request)
    body = await _json(request)
    server = request.app[BRIDGE_KEY].db.settings.pbx_instance
    ami = request.app[AMI_KEY]
    if body.get("action") == "login":
        result = await queue_membership.login(ami, server, user.phone_interface, user.username)
    elif body.get("action") == "logout":
        result = await queue_membership.logout(ami, server, user.phone_interface)
    else:
        raise ValidationError("action must be login or logout", field="action")
    return web.json_response({"queues": result})


def setup(app: web.Application, ctx: AppContext) -> None:
    hub = WebSocketHub()
    bridge = CtiBridge(ctx.db, ctx.bus, hub, open_requests=ctx.providers.get("open_requests"))

    async def on_resync(server: str, snapshot: Any) -> None:
        await bridge.on_resync(server, snapshot)
        await wrapups.reconcile(server)  # with the member states just reloaded

    servers = servers_from_settings(ctx.settings)
    ami = AmiClient(
        servers,
        bridge.on_event,
        on_resync,
        backoff_max=float(ctx.settings.ami_reconnect_max_seconds),
    )
    app[HUB_KEY], app[BRIDGE_KEY], app[AMI_KEY] = hub, bridge, ami
    wrapups = wrapup.setup(app, ctx, bridge, ami, hub)

    give_pbx_access(bridge, ami, ctx.settings)
    follow_link_requests(ctx.db, ctx.bus)
    follow_surveys(ctx.db, ctx.bus)

    server_names = [s.name for s in servers]
    wire_cluster(ctx.cluster, hub, bridge, ami, server_names)
    wire_hub(hub, bridge, ctx.cluster, server_names)

    agi = build_agi_server(
        ctx.settings,
        ctx.db,
        ctx.bus,
        ctx.providers.get("status_for"),
        request_owner=ctx.providers.get("request_owner"),
        prompt_texts=PROMPTS,
        agent_available=bridge.agents.can_take_direct_call,
        extra_routes=ctx.providers.get("agi_routes"),
    )

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        # Nested try/finally: a start-up failure half-way still stops what had started
        # (the bridge holds the caller-lookup connection).
        await bridge.start()
        try:
            await follow_until_leading(ctx.cluster, ami, server_names)
            await ami.start()
            try:
                await _start_agi()
                yield
            finally:
                try:
                    await agi.stop()
                finally:
                    await ami.stop()
        finally:
            await bridge.stop()

    async def _start_agi() -> None:
        try:
            await agi.start()
        except OSError as exc:
            # The dialplan falls back to the queue without us; say so loudly and go on.
            log.error(
                "FastAGI cannot listen on %s:%s (%s): calls skip lookup and IVR",
                ctx.settings.fastagi_host,
                ctx.settings.fastagi_port,
                exc.strerror,
            )

    async def close_sockets(_app: web.Application) -> None:
        # Before aiohttp waits for handlers to finish: open sockets would hold it 60 s.
        await hub.close_all()

    app.on_shutdown.append(close_sockets)
    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/ws", websocket)
    app.router.add_post("/api/dial", dial)
    app.router.add_get("/api/calls/unprocessed", unprocessed)
    app.router.add_get("/api/calls/callbacks", callbacks)
    app.router.add_get("/api/calls/{call_id}", get_call)
    app.router.add_post("/api/calls/{call_id}/wrap-up", wrap_up)
    app.router.add_post("/api/calls/{call_id}/called-back", called_back)
    app.router.add_get("/api/agent/state", agent_state)
    app.router.add_post("/api/agent/pause", pause)
    app.router.add_post("/api/agent/queue", queue_login)
