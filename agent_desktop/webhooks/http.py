"""Webhooks in 系统管理: the JSON API under /api/admin/webhooks and the pages /admin/webhooks.

Admins only. The secret is in the create and rotate replies and nowhere else.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiohttp import web

import agent_desktop.webhooks.services as services
from agent_desktop.common.guards import context, current_user, require_roles
from agent_desktop.common.ipaccess import client_ip
from agent_desktop.common.pages import render
from crm_core.errors import NotFound, ValidationError
from webhooks.events import EVENT_TYPES

BODY_LIMIT = 64 * 1024
EVENT_BOX = "event:"  # the page's checkboxes, one per event type
# The worker's wake-up: a test event or a redelivery goes out at once, not at the next poll.
WAKE_KEY = web.AppKey("webhook_wake", asyncio.Event)


@dataclass(frozen=True)
class WebActor:
    user_id: int | None
    name: str
    ip: str | None
    via: str = "web"


def actor_of(request: web.Request) -> WebActor:
    user = current_user(request)
    return WebActor(user.id, user.username, client_ip(request, context(request).settings))


async def body_of(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > BODY_LIMIT:
        raise ValidationError("the request body is too large")
    try:
        body = await request.json()
    except ValueError:
        raise ValidationError("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ValidationError("the body must be a JSON object")
    boxes = {k[len(EVENT_BOX) :]: v for k, v in body.items() if k.startswith(EVENT_BOX)}
    if boxes and "events" not in body:
        body["events"] = [name for name, checked in boxes.items() if checked is True]
    return body


def number(request: web.Request, key: str = "id") -> int:
    value = request.match_info[key]
    if not value.isdigit() or len(value) > 12:
        raise NotFound(f"no webhook {key} {value[:20]!r}")
    return int(value)


def wake(request: web.Request) -> None:
    event = request.app.get(WAKE_KEY)
    if event is not None:
        event.set()


@require_roles("admin")
async def list_endpoints(request: web.Request) -> web.Response:
    rows = await services.list_endpoints(context(request).db)
    return web.json_response({"endpoints": rows, "event_types": list(EVENT_TYPES)})


@require_roles("admin")
async def create_endpoint(request: web.Request) -> web.Response:
    body = await body_of(request)
    row, secret = await services.create_endpoint(context(request).db, actor_of(request), body)
    return web.json_response({"endpoint": row, "secret": secret}, status=201)


@require_roles("admin")
async def update_endpoint(request: web.Request) -> web.Response:
    body = await body_of(request)
    db, actor = context(request).db, actor_of(request)
    row = await services.update_endpoint(db, actor, number(request), body)
    return web.json_response({"endpoint": row})


@require_roles("admin")
async def rotate_secret(request: web.Request) -> web.Response:
    db, actor = context(request).db, actor_of(request)
    secret = await services.rotate_secret(db, actor, number(request))
    return web.json_response({"secret": secret})


@require_roles("admin")
async def send_test(request: web.Request) -> web.Response:
    delivery = await services.send_test(context(request).db, number(request))
    wake(request)
    return web.json_response({"delivery_id": delivery}, status=202)


@require_roles("admin")
async def list_deliveries(request: web.Request) -> web.Response:
    rows = await services.deliveries(context(request).db, number(request))
    return web.json_response({"deliveries": rows})


@require_roles("admin")
async def redeliver(request: web.Request) -> web.Response:
    db, actor = context(request).db, actor_of(request)
    row = await services.redeliver(db, actor, number(request))
    wake(request)
    return web.json_response({"delivery": row}, status=202)


@require_roles("admin")
async def endpoints_page(request: web.Request) -> web.Response:
    rows = await services.list_endpoints(context(request).db)
    return render(request, "admin_webhooks.html", rows=rows, event_types=EVENT_TYPES)


@require_roles("admin")
async def deliveries_page(request: web.Request) -> web.Response:
    db, endpoint_id = context(request).db, number(request)
    endpoint = next((r for r in await services.list_endpoints(db) if r["id"] == endpoint_id), None)
    if endpoint is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    rows = await services.deliveries(db, endpoint_id)
    return render(request, "admin_webhook_deliveries.html", endpoint=endpoint, rows=rows)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/admin/webhooks", list_endpoints)
    app.router.add_post("/api/admin/webhooks", create_endpoint)
    app.router.add_patch("/api/admin/webhooks/{id}", update_endpoint)
    app.router.add_post("/api/admin/webhooks/{id}/rotate-secret", rotate_secret)
    app.router.add_post("/api/admin/webhooks/{id}/test", send_test)
    app.router.add_get("/api/admin/webhooks/{id}/deliveries", list_deliveries)
    app.router.add_post("/api/admin/webhook-deliveries/{id}/redeliver", redeliver)
    app.router.add_get("/admin/webhooks", endpoints_page)
    app.router.add_get("/admin/webhooks/{id}", deliveries_page)
