"""The wallboard's business tiles (wallboard/business.py, ticketing/board.py) on the real app:
they arrive on /ws/wallboard and change without a reload when a request changes stage; a
supervisor sees their own region only; the page carries the new tiles in Chinese."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from desk_world import ORIGIN, World, login_ok

from agent_desktop.services import BRIDGE_KEY
from agent_desktop.wallboard.business import agents_in_wrapup, for_region
from cti.models import Call
from ticketing.context import TicketingContext
from ticketing.journal import Actor
from ticketing.requests import ServiceRequestService

Snapshot = dict[str, Any]


def stages_of(snap: Snapshot, region: str) -> dict[str, int]:
    rows = [r for r in snap["business"]["regions"] if r["region"] == region]
    return rows[0]["stages"] if rows else {}


async def wait_for(
    ws: Any, wanted: Callable[[Snapshot], bool], seconds: float = 5.0
) -> tuple[Snapshot, float]:
    """The first pushed snapshot that satisfies `wanted`, and how long it took."""
    started = time.monotonic()
    while (left := seconds - (time.monotonic() - started)) > 0:
        snap = await ws.receive_json(timeout=left)
        if snap.get("type") == "wallboard" and wanted(snap):
            return snap, time.monotonic() - started
    raise AssertionError("no wallboard snapshot showed the change in time")


async def test_tiles_arrive_and_follow_a_stage_change_without_reload(
    client: TestClient[Any, Any], world: World
) -> None:
    await login_ok(client, "admin1")
    ws = await client.ws_connect("/ws/wallboard", headers={"Origin": ORIGIN})
    try:
        first, _ = await wait_for(ws, lambda s: True)
        assert first["business"]["regions"] == []
        assert "new" in first["business"]["stages"] and "closed" not in first["business"]["stages"]
        assert first["wrapup"] == {"count": 0, "names": []}
        assert isinstance(first["queues_today"], list)

        requests = ServiceRequestService(TicketingContext(world.db))
        actor = Actor.user(world.users["agent_east"])
        row = await requests.create(
            {"customer_id": world.east_customer, "description": "刹车异响"}, actor
        )
        created, _ = await wait_for(ws, lambda s: stages_of(s, "华东") == {"new": 1})
        assert created["business"]["regions"][0]["open_requests"] == 1

        await requests.act(row.id, "submit", actor)
        _, took = await wait_for(ws, lambda s: stages_of(s, "华东") == {"submitted": 1})
        assert took < 2.5  # one broadcast period (1 s) plus slack for a busy machine
    finally:
        await ws.close()


async def test_a_supervisor_sees_the_requests_of_their_region_only(
    client: TestClient[Any, Any], world: World
) -> None:
    requests = ServiceRequestService(TicketingContext(world.db))
    actor = Actor.user(world.users["agent_east"])
    for customer in (world.east_customer, world.north_customer, world.north_customer):
        await requests.create({"customer_id": customer, "description": "无法启动"}, actor)
    await login_ok(client, "sup_east")
    mine = await (await client.get("/api/wallboard")).json()
    assert [(r["region"], r["open_requests"]) for r in mine["business"]["regions"]] == [("华东", 1)]
    client.session.cookie_jar.clear()
    await login_ok(client, "admin1")
    everyone = await (await client.get("/api/wallboard")).json()
    assert [(r["region"], r["open_requests"]) for r in everyone["business"]["regions"]] == [
        ("华东", 1),
        ("华北", 2),
    ]


async def test_the_page_carries_the_new_tiles_in_chinese(
    client: TestClient[Any, Any], world: World
) -> None:
    await login_ok(client, "sup_east")
    page = await (await client.get("/wallboard", headers={"Accept": "text/html"})).text()
    for node in ('id="wb-business"', 'id="wb-stages"', 'id="wb-today"', 'id="wb-wrapup"'):
        assert node in page
    assert "超时未派工" in page and "今日应回访" in page and "话后小结中的坐席" in page
    assert "技术科审核中" in page and "放弃率" in page  # stage labels, today by queue
    assert "<script>" not in page  # the CSP forbids inline scripts: data only


async def test_an_agent_in_wrap_up_shows_on_the_board(
    client: TestClient[Any, Any], world: World
) -> None:
    agents = client.app[BRIDGE_KEY].agents
    for queue in ("hotline", "vip"):
        headers = {"Queue": queue, "Interface": "PJSIP/1001", "MemberName": "坐席 李娜"}
        agents.apply("main", "QueueMember", {**headers, "Status": "1", "Paused": "0"})
    await login_ok(client, "admin1")
    assert (await (await client.get("/api/wallboard")).json())["wrapup"]["count"] == 0
    agents.set_wrapup("PJSIP/1001", time.time() + 60)
    snap = await (await client.get("/api/wallboard")).json()
    assert snap["wrapup"] == {"count": 1, "names": ["坐席 李娜"]}


async def test_today_by_queue_comes_from_cti_kpis(
    client: TestClient[Any, Any], world: World
) -> None:
    entered = datetime.now(UTC) - timedelta(seconds=1)  # today in Beijing, bar one second
    common = {"server": "pbx", "direction": "inbound", "number": "13900000000"}
    async with world.db.transaction() as session:
        session.add_all(
            [
                Call(linkedid="K1", **common, status="ended", queue="hotline",
                     entered_at=entered, outcome="answered", wait_seconds=5.0),
                Call(linkedid="K2", **common, status="ended", queue="hotline",
                     entered_at=entered, outcome="abandoned", wait_seconds=30.0),
            ]
        )  # fmt: skip
    await login_ok(client, "sup_east")
    snap = await (await client.get("/api/wallboard")).json()
    (hotline,) = [q for q in snap["queues_today"] if q["queue"] == "hotline"]
    assert (hotline["offered"], hotline["answered"], hotline["abandoned"]) == (2, 1, 1)
    assert (hotline["service_level"], hotline["abandon_rate"]) == (50.0, 50.0)
    assert hotline["asa"] == 5.0 and hotline["longest_wait"] == 30.0


def test_wrapup_names_each_agent_once() -> None:
    agents = [
        {"member_name": "王芳", "queue": "hotline", "state": "wrapup"},
        {"member_name": "王芳", "queue": "vip", "state": "wrapup"},
        {"member_name": "李强", "queue": "hotline", "state": "available"},
        {"member_name": "张伟", "queue": "hotline", "state": "wrapup"},
        {"member_name": "赵敏", "queue": "hotline", "state": "paused"},
    ]
    assert agents_in_wrapup(agents) == {"count": 2, "names": ["张伟", "王芳"]}


def test_for_region_keeps_only_that_region() -> None:
    business = {"stages": ["new"], "regions": [{"region": "华东"}, {"region": None}]}
    assert for_region(business, "华东")["regions"] == [{"region": "华东"}]
    assert for_region(business, None) is business
