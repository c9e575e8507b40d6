"""Webhooks in 系统管理 (issue #21 §3): admins only, bad input gets 4xx with an error_id,
the secret is shown once, a test event and a bus event reach a real receiver, redeliver."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from desk_world import JSON, ORIGIN, World, audit_rows, login_ok
from sqlalchemy import select

from agent_desktop.context import CONTEXT_KEY
from crm_core.events import WorkOrderDispatched
from crm_core.models import ChangeRecord


class Hook:
    """A loopback receiver that checks the signature as docs/webhooks.md shows."""

    def __init__(self) -> None:
        self.secret = ""
        self.got: list[tuple[str, str, bool]] = []  # (event, delivery id, signature ok)
        self.runner: web.AppRunner | None = None
        self.url = ""
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        parts = dict(p.split("=", 1) for p in request.headers["X-Hotline-Signature"].split(","))
        signed = parts["t"].encode() + b"." + body
        good = hmac.compare_digest(
            hmac.new(self.secret.encode(), signed, hashlib.sha256).hexdigest(), parts["v1"]
        )
        headers = request.headers
        self.got.append((headers["X-Hotline-Event"], headers["X-Hotline-Delivery"], good))
        self.arrived.set()
        return web.Response(text="ok")

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.got) < count:
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    receiver = Hook()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    receiver.runner = web.AppRunner(app)
    await receiver.runner.setup()
    site = web.TCPSite(receiver.runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    receiver.url = f"http://127.0.0.1:{port}/hook"
    yield receiver
    await receiver.runner.cleanup()


async def admin_headers(client: TestClient[Any, Any]) -> dict[str, str]:
    return {**JSON, "X-CSRF-Token": await login_ok(client, "admin1"), "Origin": ORIGIN}


async def create(
    client: TestClient[Any, Any], headers: dict[str, str], url: str, events: list[str]
) -> dict[str, Any]:
    body = {"name": "ERP", "url": url, "events": events}
    response = await client.post("/api/admin/webhooks", json=body, headers=headers)
    assert response.status == 201, await response.text()
    data: dict[str, Any] = await response.json()
    return data


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.test/x", "events": ["call.ended"]}, "url"),
        ({"url": "not a url", "events": ["call.ended"]}, "url"),
        ({"url": "http://example.test/x", "events": ["call.exploded"]}, "events"),
        ({"url": "http://example.test/x", "events": []}, "events"),
    ],
)
async def test_bad_input_gets_422_with_an_error_id_and_stores_nothing(
    client: TestClient[Any, Any], world: World, body: dict[str, Any], field: str
) -> None:
    headers = await admin_headers(client)
    response = await client.post("/api/admin/webhooks", json={"name": "x", **body}, headers=headers)
    assert response.status == 422
    error = await response.json()
    assert error["error_id"] == "validation_failed" and error["field"] == field
    listed = await (await client.get("/api/admin/webhooks", headers=headers)).json()
    assert listed["endpoints"] == []


async def test_only_admins_and_only_with_csrf(client: TestClient[Any, Any], world: World) -> None:
    token = await login_ok(client, "sup_east")
    headers = {**JSON, "X-CSRF-Token": token, "Origin": ORIGIN}
    assert (await client.get("/api/admin/webhooks", headers=headers)).status == 403
    body = {"name": "x", "url": "http://example.test/", "events": ["call.ended"]}
    refused = await client.post("/api/admin/webhooks", json=body, headers=headers)
    assert refused.status == 403 and "error_id" in await refused.json()
    assert (await client.get("/admin/webhooks", headers=headers)).status == 403
    admin = await admin_headers(client)
    no_csrf = await client.post("/api/admin/webhooks", json=body, headers=JSON)
    assert no_csrf.status == 403
    assert (await client.post("/api/admin/webhooks", json=body, headers=admin)).status == 201


async def test_the_secret_is_shown_once_and_a_test_event_arrives_signed(
    hook: Hook, client: TestClient[Any, Any], world: World
) -> None:
    # The receiver first: it is torn down last, after the app (and its worker) stopped.
    headers = await admin_headers(client)
    created = await create(client, headers, hook.url, ["work_order.dispatched"])
    hook.secret, endpoint_id = created["secret"], created["endpoint"]["id"]
    assert hook.secret.startswith("whsec_")
    listed = await (await client.get("/api/admin/webhooks", headers=headers)).text()
    assert hook.secret not in listed
    sent = await client.post(f"/api/admin/webhooks/{endpoint_id}/test", headers=headers)
    assert sent.status == 202
    await hook.wait_for(1)
    assert hook.got[0][0] == "webhook.test" and hook.got[0][2] is True
    # A domain event on the bus reaches the endpoint that subscribed to it.
    bus = client.app[CONTEXT_KEY].bus
    await bus.publish(WorkOrderDispatched(5, 4, world.users["tech_east"], "400热线"))
    await hook.wait_for(2)
    assert hook.got[1][0] == "work_order.dispatched" and hook.got[1][2] is True
    changes = await audit_rows(world.db, "admin_webhook_endpoint_create")
    assert len(changes) == 1
    async with world.db.transaction() as session:
        records = (
            await session.scalars(
                select(ChangeRecord).where(ChangeRecord.entity == "webhook_endpoint")
            )
        ).all()
    assert [r.action for r in records] == ["create"]
    assert hook.secret not in str(records[0].after) and (records[0].after or {})["url"] == hook.url


async def test_rotate_then_the_log_then_redeliver(
    hook: Hook, client: TestClient[Any, Any], world: World
) -> None:
    # The receiver first: it is torn down last, after the app (and its worker) stopped.
    headers = await admin_headers(client)
    created = await create(client, headers, hook.url, ["call.ended"])
    endpoint_id = created["endpoint"]["id"]
    rotated = await client.post(f"/api/admin/webhooks/{endpoint_id}/rotate-secret", headers=headers)
    hook.secret = (await rotated.json())["secret"]
    assert hook.secret != created["secret"]
    await client.post(f"/api/admin/webhooks/{endpoint_id}/test", headers=headers)
    await hook.wait_for(1)
    assert hook.got[0][2] is True  # signed with the new secret
    log = await client.get(f"/api/admin/webhooks/{endpoint_id}/deliveries", headers=headers)
    [delivery] = (await log.json())["deliveries"]
    assert (delivery["state"], delivery["attempts"], delivery["last_status"]) == (
        "delivered",
        1,
        200,
    )
    again = await client.post(
        f"/api/admin/webhook-deliveries/{delivery['id']}/redeliver", headers=headers
    )
    assert again.status == 202
    await hook.wait_for(2)
    assert hook.got[1][1] == hook.got[0][1] == delivery["delivery_id"]  # same id: dedupable
    page = await client.get(f"/admin/webhooks/{endpoint_id}", headers={"Accept": "text/html"})
    assert page.status == 200 and delivery["delivery_id"] in await page.text()
    assert (await client.get("/admin/webhooks")).status == 200
    disable = await client.patch(
        f"/api/admin/webhooks/{endpoint_id}", json={"active": False}, headers=headers
    )
    assert (await disable.json())["endpoint"]["active"] is False
    missing = await client.post("/api/admin/webhooks/999/test", headers=headers)
    assert missing.status == 404 and (await missing.json())["error_id"] == "not_found"
