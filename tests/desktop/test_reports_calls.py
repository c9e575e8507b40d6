"""The call reports feature in the real app: roles, the region scope, the page with its
charts, the JSON API and the CSV/XLSX export. (The formulas: tests/cti/test_kpi.py.)"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from desk_world import World, login_ok
from openpyxl import load_workbook

from cti.models import Call

HTML = {"Accept": "text/html"}
DAY = "since=2026-03-01&until=2026-03-01"
NINE_AM = datetime(2026, 3, 1, 1, tzinfo=UTC)  # 09:00 Beijing


async def add_calls(world: World) -> None:
    rows = [
        ("agent_east", "answered", 10.0),
        ("agent_north", "answered", 30.0),
        (None, "abandoned", 60.0),
    ]
    async with world.db.transaction() as session:
        for n, (who, outcome, wait) in enumerate(rows):
            session.add(
                Call(
                    server="pbx",
                    linkedid=f"R{n}",
                    direction="inbound",
                    status="ended",
                    queue="hotline",
                    entered_at=NINE_AM + timedelta(minutes=n),
                    agent_id=world.users[who] if who else None,
                    outcome=outcome,
                    wait_seconds=wait,
                    talk_seconds=100.0 if who else None,
                    disposition="consultation" if who else None,
                )
            )


async def as_user(client: TestClient[Any, Any], username: str) -> None:
    client.session.cookie_jar.clear()
    await login_ok(client, username)


async def get_json(client: TestClient[Any, Any], path: str, status: int = 200) -> Any:
    response = await client.get(path)
    assert response.status == status, await response.text()
    return await response.json()


async def test_a_supervisor_sees_their_region_and_the_unanswered(
    client: TestClient[Any, Any], world: World
) -> None:
    await add_calls(world)
    east = str(world.users["agent_east"])
    await as_user(client, "sup_east")
    data = await get_json(client, f"/api/reports/calls?{DAY}&group=agent&region=华北")
    # the region filter is locked to the supervisor's own: 华东's agent and the abandoned call
    assert [r["key"] for r in data["rows"]] == [east, ""]
    assert (data["total"]["offered"], data["total"]["answered"]) == (2, 1)
    assert data["total"]["service_level"] == 50.0  # 1 within 20 s / 2 offered
    await as_user(client, "admin1")
    data = await get_json(client, f"/api/reports/calls?{DAY}&group=queue")
    assert [r["key"] for r in data["rows"]] == ["hotline"]
    total = data["total"]
    assert (total["offered"], total["answered"], total["abandoned"]) == (3, 2, 1)
    assert total["asa"] == 20.0 and total["dispositions"] == {"consultation": 2}
    await get_json(client, f"/api/reports/calls?{DAY}&group=week", status=422)
    await get_json(client, "/api/reports/calls?since=2026-03-02&until=2026-03-01", status=422)


async def test_agents_may_not_see_reports(client: TestClient[Any, Any], world: World) -> None:
    await as_user(client, "agent_east")
    for path in ("/reports/calls", "/api/reports/calls", "/api/reports/calls/export"):
        assert (await client.get(path, headers=HTML)).status == 403


async def test_page_charts_and_exports(client: TestClient[Any, Any], world: World) -> None:
    await add_calls(world)
    await as_user(client, "admin1")
    response = await client.get(f"/reports/calls?{DAY}&group=agent", headers=HTML)
    page = await response.text()
    assert response.status == 200, page[:400]
    for chart in ("call-volume", "call-rates", "call-times"):
        assert f'id="chart-{chart}"' in page
    assert "话务与坐席指标" in page and "服务水平 %" in page and "无坐席（未接通）" in page
    assert " style=" not in page.split("<main>", 1)[-1] and "<script>" not in page
    assert 'href="/reports/calls"' in page  # the navigation link
    (csv_url,) = re.findall(r'id="csv-export" href="([^"]+)"', page)
    response = await client.get(csv_url.replace("&amp;", "&"))
    assert response.status == 200 and response.content_type == "text/csv"
    text = (await response.read()).decode("utf-8")
    assert text.startswith("\ufeff坐席,呼入,") and "\r\n合计,3,2,1," in text
    (xlsx_url,) = re.findall(r'id="xlsx-export" href="([^"]+)"', page)
    response = await client.get(xlsx_url.replace("&amp;", "&"))
    assert response.status == 200
    sheet = load_workbook(io.BytesIO(await response.read())).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("坐席", "呼入", "已接听")
    assert rows[-1][:4] == ("合计", 3, 2, 1)
    assert rows[0][-1] == "处理结果: 咨询" and rows[-1][-1] == 2
