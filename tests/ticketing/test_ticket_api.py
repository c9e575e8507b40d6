"""The ticketing REST API: the loop through HTTP, with role and object-level checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from ticket_world import World, make_world

from agent_desktop.auth import api as auth
from agent_desktop.context import CONTEXT_KEY, DB_KEY, AppContext
from agent_desktop.server import error_middleware
from agent_desktop.sms import webhook as sms_webhook
from agent_desktop.tickets import api as ticketing_api
from crm_core.db import Database
from crm_core.phones import mask

PASSWORD = "correct-horse-9"
ORIGIN = "http://127.0.0.1:8080"
AiohttpClient = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


class Session:
    def __init__(self, client: TestClient[Any, Any], token: str) -> None:
        self.client, self.token = client, token

    async def get(self, path: str) -> Any:
        response = await self.client.get(path)
        return response.status, await response.json()

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        response = await self.client.post(
            path, json=body, headers={"X-CSRF-Token": self.token, "Origin": ORIGIN}
        )
        return response.status, await response.json()


@pytest.fixture
async def api(db: Database, aiohttp_client: AiohttpClient) -> tuple[World, Any]:
    world = await make_world(db, password=PASSWORD)
    app = web.Application(middlewares=[error_middleware])
    app[DB_KEY] = db
    app[CONTEXT_KEY] = AppContext(db.settings, db)
    for feature in (auth.setup, sms_webhook.setup, ticketing_api.setup):
        feature(app, app[CONTEXT_KEY])

    async def login(username: str) -> Session:
        client = await aiohttp_client(app)
        response = await client.post(
            "/api/login", json={"username": username, "password": PASSWORD}
        )
        assert response.status == 200, await response.text()
        return Session(client, (await response.json())["csrf_token"])

    return world, login


async def test_loop_through_the_api_with_permissions(api: tuple[World, Any]) -> None:
    world, login = api
    agent, reviewer = await login("agent1"), await login("reviewer")
    boss, tech, tech2 = await login("office_sup"), await login("tech1"), await login("tech2")
    status, created = await agent.post(
        "/api/tickets",
        {"customer_id": world.customer_id, "description": "漏油", "priority": "high"},
    )
    assert status == 201 and created["state"] == "new"
    rid = created["id"]
    assert (await agent.post(f"/api/tickets/{rid}/actions", {"action": "approve"}))[0] == 403
    assert (await agent.post(f"/api/tickets/{rid}/actions", {"action": "submit"}))[0] == 200
    status, queue = await reviewer.get("/api/tickets/review-queue")
    assert status == 200 and [r["id"] for r in queue["requests"]] == [rid]
    assert (await agent.get("/api/tickets/review-queue"))[0] == 403
    await reviewer.post(f"/api/tickets/{rid}/actions", {"action": "start_review"})
    status, body = await reviewer.post(
        f"/api/tickets/{rid}/actions", {"action": "approve", "office": "合肥服务站"}
    )
    assert status == 200 and body["state"] == "dispatched_to_office"
    status, board = await boss.get("/api/dispatch-board")
    assert [r["id"] for r in board["waiting"]] == [rid]
    assert {t["id"] for t in board["technicians"]} == {world.tech, world.tech2}
    assert (await tech.get(f"/api/tickets/{rid}"))[0] == 403
    status, order = await boss.post(f"/api/tickets/{rid}/dispatch", {"technician_id": world.tech})
    assert status == 201
    assert (await tech.get(f"/api/tickets/{rid}"))[0] == 200
    assert (await tech2.get(f"/api/tickets/{rid}"))[0] == 403
    wo = order["id"]
    assert (await tech2.post(f"/api/work-orders/{wo}/report", {"action": "accept"}))[0] == 403
    assert (await tech.post(f"/api/work-orders/{wo}/report", {"action": "accept"}))[0] == 200
    status, done = await tech.post(
        f"/api/work-orders/{wo}/report", {"action": "complete", "text": "换油封"}
    )
    assert status == 200 and done["state"] == "done"
    status, mine = await agent.get("/api/follow-ups")
    other = await login("agent2")
    (follow_up,) = mine["follow_ups"] or (await other.get("/api/follow-ups"))[1]["follow_ups"]
    owner = agent if mine["follow_ups"] else other
    stranger = other if owner is agent else agent
    path = f"/api/follow-ups/{follow_up['id']}/result"
    assert (await stranger.post(path, {"score": 5}))[0] == 403
    assert (await owner.post(path, {"score": 7}))[0] == 422
    assert (await owner.post(path, {"score": 5, "comment": "满意"}))[0] == 200
    status, detail = await agent.get(f"/api/tickets/{rid}")
    assert detail["request"]["state"] == "closed"
    assert [t["action"] for t in detail["transitions"]][-2:] == ["record_result", "close"]
    # An agent does not see full numbers: the technician's mobile is masked in the API too.
    assert detail["sms"] and detail["sms"][0]["to"] == mask(world.tech_mobile)
    assert world.tech_mobile[-4:] in detail["sms"][0]["to"] != world.tech_mobile
    status, report = await boss.get("/api/tickets/reports")
    assert status == 200 and report["satisfaction_by_region"][0]["mean"] == 5
    response = await boss.client.get("/api/tickets/reports?format=csv")
    assert response.status == 200 and "time_to_complete" in await response.text()
    page = await boss.client.get("/dev/sms")
    assert page.status == 200 and world.tech_mobile in await page.text()
    assert (
        await agent.client.get("/dev/sms", headers={"Accept": "application/json"})
    ).status == 403
