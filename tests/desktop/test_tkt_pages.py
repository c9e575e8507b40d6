"""Ticketing pages in the real app (every feature): the loop through the pages, role and
object-level checks, the timeline API, the reports page with its charts, the catalogue."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from desk_world import World, login_ok

from agent_desktop import i18n
from agent_desktop.common.labels import all_msgids
from agent_desktop.services import ticketing_for
from ticketing.context import TicketingContext
from ticketing.field import set_mobile
from ticketing.models import ServiceRequest
from ticketing.sla import check_sla

HTML = {"Accept": "text/html"}
NAV = {"Service requests", "Review queue", "Dispatch board", "Follow-ups", "Reports"}


class As:
    """One logged-in user of the shared test client (log in again to switch)."""

    def __init__(self, client: TestClient[Any, Any], username: str) -> None:
        self.client, self.username, self.token = client, username, ""

    async def enter(self) -> As:
        self.client.session.cookie_jar.clear()
        self.token = await login_ok(self.client, self.username)
        return self

    async def page(self, path: str, status: int = 200) -> str:
        response = await self.client.get(path, headers=HTML)
        text = await response.text()
        assert response.status == status, (path, response.status, text[:400])
        return text

    async def post(self, path: str, body: dict[str, Any], status: int = 200) -> Any:
        response = await self.client.post(
            path, json=body, headers={"X-CSRF-Token": self.token, "Origin": ORIGIN}
        )
        data = await response.json()
        assert response.status == status, (path, response.status, data)
        return data


ORIGIN = "http://127.0.0.1:8080"


async def _as(client: TestClient[Any, Any], username: str) -> As:
    return await As(client, username).enter()


async def _create_and_dispatch(client: TestClient[Any, Any], world: World) -> tuple[int, int]:
    await set_mobile(TicketingContext(world.db), world.users["tech_east"], "13800000001")
    agent = await _as(client, "agent_east")
    form = await agent.page(f"/tickets/new?customer_id={world.east_customer}&linkedid=17000.1")
    assert 'id="ticket-create"' in form and "合肥江淮运输有限公司" in form and "17000.1" in form
    created = await agent.post(
        "/api/tickets",
        {
            "customer_id": world.east_customer,
            "description": "刹车异响",
            "priority": "high",
            "call_linkedid": "17000.1",
        },
        status=201,
    )
    rid = created["id"]
    page = await agent.page(f"/tickets/{rid}")
    assert created["number"] in page and 'id="act-submit"' in page and "新建" in page
    assert 'id="act-approve"' not in page  # an agent does not review
    await agent.post(f"/api/tickets/{rid}/actions", {"action": "submit"})

    sup = await _as(client, "sup_east")
    queue = await sup.page("/tickets/review")
    assert f'id="review-{rid}"' in queue and "开始审核" in queue
    await sup.post(f"/api/tickets/{rid}/actions", {"action": "start_review"})
    assert "审核通过" in await sup.page("/tickets/review")
    await sup.post(f"/api/tickets/{rid}/actions", {"action": "approve", "office": "400热线"})
    board = await sup.page("/tickets/dispatch")
    tech = world.users["tech_east"]
    assert f'id="waiting-{rid}"' in board and f'id="assign-{rid}-{tech}"' in board
    assert f'data-assign="/api/tickets/{rid}/dispatch"' in board and "待派工" in board
    order = await sup.post(f"/api/tickets/{rid}/dispatch", {"technician_id": tech}, status=201)
    after = await sup.page("/tickets/dispatch")
    assert f'id="waiting-{rid}"' not in after and f'id="tech-{tech}"' in after
    return rid, order["id"]


async def test_the_loop_through_the_pages(client: TestClient[Any, Any], world: World) -> None:
    rid, order = await _create_and_dispatch(client, world)
    tech = await _as(client, "tech_east")
    assert "现场服务中" in await tech.page(f"/tickets/{rid}")
    await tech.post(f"/api/work-orders/{order}/report", {"action": "accept"})
    await tech.post(f"/api/work-orders/{order}/report", {"action": "complete", "text": "换刹车片"})

    rep = await _as(client, "agent_east")
    listing = await rep.page("/tickets/follow-ups")
    if "follow-up-" not in listing:  # round robin may have picked the other agent
        rep = await _as(client, "agent_north")
        listing = await rep.page("/tickets/follow-ups")
    (follow_up,) = re.findall(r'id="follow-up-(\d+)"', listing)
    assert "139****1234" in listing and "13905581234" not in listing
    assert f'data-phone-id="{world.east_phone}"' in listing
    dial = f"/tickets/follow-ups/{follow_up}/dial"
    refused = await rep.post(dial, {"phone_id": world.north_phone, "request_id": "abcdefgh1"}, 403)
    assert refused["error_id"] == "ticketing_forbidden"
    no_phone = await rep.post(dial, {"phone_id": world.east_phone, "request_id": "abcdefgh2"}, 409)
    assert no_phone["error_id"] == "no_phone"  # these agents have no extension
    await rep.post(f"/api/follow-ups/{follow_up}/result", {"score": 5, "comment": "满意"})

    page = await rep.page(f"/tickets/{rid}")
    assert 'id="ticket-state">已关闭' in page and "已记录满意度" in page
    assert "换刹车片" in page
    assert "派工单" in page
    assert "发出短信" in page
    assert "13905581234" not in page and "139****1234" in page  # the SMS text is masked too
    response = await client.get(f"/api/tickets/{rid}/timeline")
    body = await response.json()
    kinds = [e["kind"] for e in body["timeline"]]
    actions = [e["title"] for e in body["timeline"] if e["kind"] == "transition"]
    assert body["request"]["state"] == "closed" and "sms_out" in kinds
    assert actions[:3] == ["create", "submit", "start_review"] and actions[-1] == "close"
    assert [e["at"] for e in body["timeline"]] == sorted(e["at"] for e in body["timeline"])
    detail = await (await client.get(f"/api/tickets/{rid}")).json()
    assert detail["sms"] and "13905581234" not in json.dumps(detail, ensure_ascii=False)
    assert any("139****1234" in m["body"] for m in detail["sms"])  # the JSON API masks too


async def test_roles_and_objects_are_checked(client: TestClient[Any, Any], world: World) -> None:
    rid, _order = await _create_and_dispatch(client, world)
    agent = await _as(client, "agent_east")
    nav = await agent.page("/tickets")
    assert f'id="ticket-{rid}"' in nav and 'href="/tickets/follow-ups"' in nav
    assert 'href="/tickets/dispatch"' not in nav and 'href="/reports"' not in nav
    for path in ("/tickets/review", "/tickets/dispatch", "/reports"):
        assert "无权" in await agent.page(path, status=403)
    north = await _as(client, "agent_north")
    await north.page(f"/customers/{world.east_customer}", status=404)
    await north.page(f"/tickets/new?customer_id={world.east_customer}", status=404)
    admin = await _as(client, "admin1")
    assert f'id="ticket-{rid}"' in await admin.page("/tickets")
    technician = await _as(client, "tech_east")
    assert f'id="ticket-{rid}"' in await technician.page("/tickets")
    assert 'id="new-ticket"' not in await technician.page("/tickets")
    await technician.page("/tickets/follow-ups", status=403)
    unknown = await client.get("/api/tickets/99999/timeline")
    assert unknown.status == 404


async def test_a_technician_without_an_order_sees_nothing(
    client: TestClient[Any, Any], world: World
) -> None:
    agent = await _as(client, "agent_east")
    created = await agent.post(
        "/api/tickets", {"customer_id": world.east_customer, "description": "漏油"}, status=201
    )
    tech = await _as(client, "tech_east")
    await tech.page(f"/tickets/{created['id']}", status=403)
    assert (await client.get(f"/api/tickets/{created['id']}/timeline")).status == 403


async def test_reports_page_draws_charts_and_links_the_csv(
    client: TestClient[Any, Any], world: World
) -> None:
    await _create_and_dispatch(client, world)
    sup = await _as(client, "sup_east")
    page = await sup.page("/reports")
    for chart in ("trend-created", "trend-hours", "region-counts", "region-hours"):
        assert f'id="chart-{chart}"' in page
    assert "每日新建服务请求" in page and "<polyline" in page and 'class="bar"' in page
    assert "华东" in page and " style=" not in page.split("<main>", 1)[1]  # CSP: no inline
    (csv_url,) = re.findall(r'id="csv-export" href="([^"]+)"', page)
    response = await client.get(csv_url.replace("&amp;", "&"))
    assert response.status == 200 and response.content_type == "text/csv"
    assert "requests,华东,repair,in_field,1" in await response.text()
    await sup.page("/reports?since=2026-02-30", status=422)
    await sup.page("/reports?since=2026-03-02&until=2026-03-01", status=422)


def test_every_ticketing_string_has_a_chinese_translation() -> None:
    from pathlib import Path

    import agent_desktop

    templates = Path(agent_desktop.__file__).parent / "templates"
    sources = [*templates.glob("tickets*.html"), templates / "reports.html"]
    sources.append(Path(agent_desktop.__file__).parent / "tickets" / "reports.py")
    wanted = all_msgids() | NAV | {"Hours to dispatch", "Hours to complete"}
    for path in sources:
        text = path.read_text(encoding="utf-8")
        wanted |= set(re.findall(r'_\(\s*"([^"]+)"', text))
        wanted |= set(re.findall(r"_\(\s*'([^']+)'", text))
    zh = i18n.catalogue("zh_CN")
    assert sorted(wanted - set(zh)) == []
    assert all(re.search(r"[\u4e00-\u9fff]", zh[m]) for m in wanted if m not in ("p90",))


async def test_an_sla_breach_reminds_the_creator_and_the_regions_supervisor(
    client: TestClient[Any, Any], world: World
) -> None:
    agent = await _as(client, "agent_east")
    created = await agent.post(
        "/api/tickets",
        {"customer_id": world.east_customer, "description": "仪表盘报警", "priority": "high"},
        status=201,
    )
    rid = created["id"]
    socket = await client.ws_connect("/ws", origin=ORIGIN)
    assert (await socket.receive_json(timeout=5))["type"] == "hello"
    async with world.db.transaction() as session:
        row = await session.get(ServiceRequest, rid)
        assert row is not None
        row.response_due_at = datetime.now(UTC) - timedelta(minutes=5)
    assert [b.kind for b in await check_sla(ticketing_for(client.server.app).ctx)] == ["response"]

    pushed = await socket.receive_json(timeout=5)
    assert (pushed["type"], pushed["breach"], pushed["request_id"]) == ("reminder", "response", rid)
    await socket.close()

    async def standing(username: str) -> list[tuple[int, str]]:
        await _as(client, username)
        body = await (await client.get("/api/desktop/reminders")).json()
        return [(b["request_id"], b["kind"]) for b in body["sla"]]

    assert await standing("agent_east") == [(rid, "response")]
    assert await standing("sup_east") == [(rid, "response")]
    assert await standing("agent_north") == []  # neither theirs nor in their scope
    agent = await _as(client, "agent_east")
    await agent.post(
        f"/api/tickets/{rid}/actions", {"action": "resolve_by_phone", "reason": "已解决"}
    )
    assert await standing("agent_east") == []  # answered: the reminder is gone
