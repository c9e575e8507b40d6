"""Disposition codes from the table (admin page, API, CLI) and the desktop's wrap-up endpoints,
on the real app in process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from desk_world import JSON, ORIGIN, World, audit_rows, login_ok
from sqlalchemy import select

from agent_desktop.calls.wrapup import WRAPUP_KEY, seconds_resolver
from agent_desktop.cli import main
from crm_core.db import Database
from crm_core.history import list_history
from crm_core.models import CallQueue
from cti.agent_state import WRAPUP_REASON
from cti.models import Call
from cti.wrapup import WrapUp

HTML = {"Accept": "text/html"}


async def _as(client: TestClient[Any, Any], username: str) -> dict[str, str]:
    client.session.cookie_jar.clear()
    token = await login_ok(client, username)
    return {**JSON, "X-CSRF-Token": token, "Origin": ORIGIN}


async def _call(db: Database, agent_id: int, disposition: str | None = None) -> int:
    row = Call(
        server="pbx", linkedid=f"L{time.monotonic_ns()}", direction="inbound", status="ended",
        outcome="answered", agent_id=agent_id, agent_interface="PJSIP/1001", queue="hotline",
        answered_at=datetime.now(UTC), disposition=disposition,
    )  # fmt: skip
    async with db.transaction() as session:
        session.add(row)
    return row.id


async def test_an_admin_manages_the_codes_agents_pick_from(
    client: TestClient[Any, Any], world: World
) -> None:
    agent = await _as(client, "agent_east")
    refused = await client.post("/api/admin/dispositions", headers=agent, json={})
    assert refused.status == 403

    admin = await _as(client, "admin1")
    made = await client.post(
        "/api/admin/dispositions", headers=admin, json={"code": "parts", "label": "配件咨询"}
    )
    assert made.status == 201, await made.text()
    assert (await made.json())["disposition"] == {
        "code": "parts", "label": "配件咨询", "sort": 80, "active": True,
    }  # fmt: skip
    again = await client.post(
        "/api/admin/dispositions", headers=admin, json={"code": "parts", "label": "x"}
    )
    assert again.status == 409
    bad = await client.post(
        "/api/admin/dispositions", headers=admin, json={"code": "Parts!", "label": "x"}
    )
    assert bad.status == 422 and (await bad.json())["field"] == "code"
    renamed = await client.patch(
        "/api/admin/dispositions/complaint", headers=admin, json={"label": "客户投诉", "sort": 5}
    )
    assert (await renamed.json())["disposition"]["label"] == "客户投诉"
    off = await client.post("/api/admin/dispositions/wrong_number/disable", headers=admin)
    assert (await off.json())["disposition"]["active"] is False
    assert len(await audit_rows(world.db, "admin_disposition_create")) == 1
    assert len(await audit_rows(world.db, "admin_disposition_disable")) == 1
    page = await (await client.get("/admin/dispositions", headers=HTML)).text()
    assert "配件咨询" in page and "打错电话" in page and "处理结果" in page

    old = await _call(world.db, world.users["agent_east"], disposition="wrong_number")
    fresh = await _call(world.db, world.users["agent_east"])
    agent = await _as(client, "agent_east")
    desk = await (await client.get("/desktop", headers=HTML)).text()
    assert desk.index("客户投诉") < desk.index("咨询")  # sorted as the admin said
    assert 'value="parts">配件咨询' in desk and 'value="wrong_number"' not in desk
    assert '"disposition.wrong_number": "打错电话"' in desk  # old calls still show it
    url = f"/api/calls/{fresh}/wrap-up"
    gone = await client.post(url, headers=agent, json={"disposition": "wrong_number"})
    assert gone.status == 422 and (await gone.json())["field"] == "disposition"
    saved = await client.post(url, headers=agent, json={"disposition": "parts", "note": "滤芯"})
    assert (await saved.json())["disposition"] == "parts"
    shown = await client.get(f"/api/calls/{old}", headers=agent)
    assert (await shown.json())["disposition"] == "wrong_number"


class Pbx:
    def __init__(self) -> None:
        self.actions: list[dict[str, Any]] = []

    async def action(
        self, server: str, action: Mapping[str, Any], *, timeout: float | None = None
    ) -> Any:
        self.actions.append(dict(action))
        return {}


async def test_the_desktop_shows_extends_and_finishes_the_wrap_up(
    client: TestClient[Any, Any], world: World
) -> None:
    service = client.app[WRAPUP_KEY]
    service.ami = pbx = Pbx()
    agent_id = world.users["agent_east"]
    call_id = await _call(world.db, agent_id)
    async with world.db.transaction() as session:
        row = await session.get(Call, call_id)
        assert row is not None
        linkedid = row.linkedid
    now = time.time()
    service.hold(WrapUp("pbx", linkedid, "PJSIP/1001", agent_id, "hotline", now, now + 60, 60.0))
    service.active["PJSIP/1001"].call_id = call_id

    other = await _as(client, "agent_north")
    assert (await (await client.get("/api/agent/wrapup", headers=other)).json()) == {"wrapup": None}
    refused = await client.post(f"/api/calls/{call_id}/wrap-up/extend", headers=other)
    assert refused.status == 404  # not their call: they do not even see it
    agent = await _as(client, "agent_east")
    shown = (await (await client.get("/api/agent/wrapup", headers=agent)).json())["wrapup"]
    assert shown["call_id"] == call_id and shown["can_extend"] and shown["seconds_left"] > 59
    extended = await client.post(f"/api/calls/{call_id}/wrap-up/extend", headers=agent)
    assert (await extended.json())["wrapup"]["until"] == pytest.approx(now + 120)
    assert pbx.actions[-1]["Paused"] == "true" and pbx.actions[-1]["Reason"] == WRAPUP_REASON
    twice = await client.post(f"/api/calls/{call_id}/wrap-up/extend", headers=agent)
    assert twice.status == 409
    assert (await twice.json())["error_id"] == "wrapup_already_extended"

    body = {"disposition": "consultation", "note": "问保养周期"}
    await client.post(f"/api/calls/{call_id}/wrap-up", headers=agent, json=body)
    assert (await (await client.get("/api/agent/wrapup", headers=agent)).json())["wrapup"] is None
    async with world.db.transaction() as session:
        row = await session.get(Call, call_id)
        assert row is not None and row.wrapup_extended is True
    over = await client.post(f"/api/calls/{call_id}/wrap-up/extend", headers=agent)
    assert over.status == 409 and (await over.json())["error_id"] == "wrapup_over"


async def test_the_wrap_up_time_is_the_one_queues_conf_gets(db: Database) -> None:
    seconds_for = seconds_resolver(db, db.settings)
    live = db.settings.pbx_mode == "test"
    assert await seconds_for("hotline") == (2 if live else 10)  # the PBX mode's default
    async with db.transaction() as session:
        queue = (await session.scalars(select(CallQueue).where(CallQueue.name == "vip"))).one()
        queue.wrapup_seconds = 45
    assert await seconds_for("vip") == 45
    assert await seconds_for(None) == await seconds_for("hotline")


async def test_the_codes_from_the_shell(
    db: Database, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", db.settings.database_url)
    monkeypatch.setenv("HOTLINE_PBX_INSTANCE", "pytest-nopbx")

    async def run(*args: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(main, ["dispositions", *args])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = await run("add", "parts", "--label", "配件咨询", "--sort", "15")
    assert code == 0 and "code=parts" in out
    assert (await run("edit", "parts", "--label", "配件/油品咨询"))[0] == 0
    assert (await run("disable", "other"))[0] == 0
    code, out, _ = await run("list")
    lines = out.splitlines()
    assert lines[1].startswith("code=parts") and "label=配件/油品咨询" in lines[1]
    assert any(line.startswith("code=other") and "active=False" in line for line in lines)
    code, _, err = await run("add", "parts", "--label", "再来")
    assert code == 1 and "already" in err
    history = await list_history(db, "disposition", _history_id("parts"))
    assert [h.action for h in history] == ["create", "update"]


def _history_id(code: str) -> int:
    from agent_desktop.admin.dispositions import history_id

    return history_id(code)
