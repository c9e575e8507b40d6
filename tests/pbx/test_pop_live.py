"""Screen pops end to end: real Asterisk, real SIPp phones, the real server, agent sockets."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import urllib.error
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from live_server import AgentBrowser, LiveServer, live_server, pops
from pbx_harness import (
    CALLER_MOBILE,
    PbxUnderTest,
    Sipp,
    place_call,
    start_carrier_phone,
    start_phone,
)
from sqlalchemy import select

from asterisk_conf.process import read_pid
from crm_core import migrate
from crm_core.customers import CustomerService
from crm_core.db import Database
from crm_core.settings import Settings
from crm_core.users import create_user, ensure_demo_users
from crm_core.vehicles import VehicleService
from cti.models import Call

pytestmark = [pytest.mark.pbx, pytest.mark.usefixtures("calls_cleared")]


@pytest.fixture
async def crm(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """A fresh SQLite CRM with the demo agents and one known customer."""
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'live.db'}")
    await asyncio.to_thread(migrate.upgrade, settings)
    db = Database.open(settings)
    await ensure_demo_users(db)
    await create_user(
        db,
        {
            "username": "agent1009",
            "display_name": "不在队列的坐席",
            "phone_interface": "PJSIP/1009",
        },
        password="hotline-demo",
    )
    customer = await CustomerService(db).create(
        {"name": "阜阳顺达物流有限公司", "code": "C0000001"}, [CALLER_MOBILE]
    )
    yield {"db": db, "url": settings.database_url, "customer": customer}
    await db.close()


@pytest.fixture
def server(pbx: PbxUnderTest, crm: dict[str, Any], tmp_path: Path) -> Any:
    with live_server(pbx, crm["url"], tmp_path) as running:
        yield running


async def browsers(server: LiveServer, *names: str) -> list[AgentBrowser]:
    opened = [AgentBrowser(server, name) for name in names]
    for browser in opened:
        await browser.connect()
        await browser.wait_for(lambda m: m.get("type") == "hello")
    return opened


def ready_pop(message: dict[str, Any]) -> bool:
    """A pop with its customer 360 (a `pending` one is followed by the full one)."""
    return message.get("type") == "pop" and message["pop"].get("match") != "pending"


def pop_update(state: str) -> Any:
    return lambda m: m.get("type") == "pop.update" and m.get("state") == state


async def calls_in(db: Database, expect: int, timeout: float = 30) -> list[Call]:
    deadline = time.monotonic() + timeout
    while True:
        async with db.transaction() as session:
            rows = list((await session.scalars(select(Call).order_by(Call.id))).all())
        if (len(rows) >= expect and all(r.status == "ended" for r in rows)) or (
            time.monotonic() > deadline
        ):
            return rows
        await asyncio.sleep(0.3)


async def test_ringing_agents_are_popped_and_the_loser_withdrawn(
    pbx: PbxUnderTest,
    server: LiveServer,
    crm: dict[str, Any],
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    sipp_processes.append(start_phone(pbx, "1001", 4000, tmp_path))
    sipp_processes.append(start_phone(pbx, "1002", None, tmp_path))
    first, second, bystander = await browsers(server, "agent1001", "agent1002", "agent1009")
    try:
        sipp_processes.append(place_call(pbx, tmp_path, caller=CALLER_MOBILE, hold_ms=25000))

        pop = await first.wait_for(ready_pop)
        assert pop["pop"]["state"] == "ringing"
        assert pop["pop"]["customer_360"]["customer"]["name"] == "阜阳顺达物流有限公司"
        connected = await first.wait_for(pop_update("connected"))
        assert connected["pop_id"] == pop["pop"]["id"]
        assert pop["_at"] < connected["_at"] - 1.0  # it was there while the phone rang

        other = await second.wait_for(ready_pop)
        assert other["pop"]["customer_360"]["customer"]["name"] == "阜阳顺达物流有限公司"
        withdrawn = await second.wait_for(pop_update("withdrawn"))
        assert withdrawn["pop_id"] == other["pop"]["id"]

        await first.wait_for(pop_update("ended"))
        assert pops(bystander.messages) == []
        assert [m["type"] for m in bystander.messages] == ["hello"]
    finally:
        for browser in (first, second, bystander):
            await browser.close()

    (call,) = await calls_in(crm["db"], 1)
    assert (call.outcome, call.customer_id, call.direction) == (
        "answered",
        crm["customer"].id,
        "inbound",
    )
    assert call.agent_interface == "PJSIP/1001" and call.talk_seconds
    assert call.recording_path


async def test_asterisk_killed_mid_call_leaves_no_call_in_progress(
    pbx: PbxUnderTest,
    server: LiveServer,
    crm: dict[str, Any],
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    sipp_processes.append(start_phone(pbx, "1001", 1000, tmp_path))
    (agent,) = await browsers(server, "agent1001")
    try:
        sipp_processes.append(place_call(pbx, tmp_path, caller=CALLER_MOBILE, hold_ms=60000))
        await agent.wait_for(pop_update("connected"))
        pid = read_pid(pbx.paths)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # no hangup events: only the resync can end the call
        await asyncio.to_thread(pbx.start)
        await agent.wait_for(pop_update("ended"), timeout=90)
    finally:
        await agent.close()
        for process in sipp_processes:
            process.stop()
    rows = await calls_in(crm["db"], 1, timeout=60)
    assert len(rows) == 1, [(r.linkedid, r.status) for r in rows]
    assert rows[0].status == "ended" and rows[0].outcome == "answered"
    assert "lost" not in (rows[0].note or "")


async def test_ivr_identified_caller_is_named_in_the_pop(
    pbx: PbxUnderTest,
    server: LiveServer,
    crm: dict[str, Any],
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    """An unknown number keys a VIN tail; the pop names the vehicle's owner anyway."""
    from test_ivr_identify import UNKNOWN_CALLER, VIN_TAIL, _ivr_call

    owner = await CustomerService(crm["db"]).create(
        {"name": "芜湖专用车运输有限公司"}, ["0553-5551234"], allow_duplicate=True
    )
    await VehicleService(crm["db"]).create(
        {"vin": f"LZZ1CLVB7KA{VIN_TAIL}", "customer_id": owner.id}
    )
    sipp_processes.append(start_phone(pbx, "1001", 2000, tmp_path))
    (agent,) = await browsers(server, "agent1001")
    try:
        sipp_processes.append(_ivr_call(pbx, tmp_path / "ivr", UNKNOWN_CALLER, VIN_TAIL))
        pop = await agent.wait_for(
            lambda m: m.get("type") == "pop" and m["pop"].get("match") != "pending", timeout=90
        )
        assert pop["pop"]["caller"] == UNKNOWN_CALLER
        assert pop["pop"]["customer_360"]["customer"]["name"] == "芜湖专用车运输有限公司"
    finally:
        await agent.close()


def member_update(paused: bool) -> Any:
    return lambda m: m.get("type") == "agent.state" and m["member"]["paused"] is paused


async def test_queue_logout_and_login_are_pushed_to_the_desktop(
    pbx: PbxUnderTest, server: LiveServer
) -> None:
    (agent,) = await browsers(server, "agent1002")
    session = await asyncio.to_thread(server.login, "agent1002")
    try:
        out = await asyncio.to_thread(
            server.post, "/api/agent/queue", session, {"action": "logout"}
        )
        assert set(out["queues"]) == {"hotline", "vip"}
        paused = await agent.wait_for(member_update(True))
        assert paused["member"]["pause_reason"] == "已签出"
        await asyncio.to_thread(server.post, "/api/agent/queue", session, {"action": "login"})
        await agent.wait_for(member_update(False))
        with pytest.raises(urllib.error.HTTPError) as refused:
            await asyncio.to_thread(server.post, "/api/agent/queue", session, {"action": "nap"})
        assert refused.value.code == 422
        refused.value.close()
    finally:
        await agent.close()


async def test_click_to_dial_rings_the_agent_then_the_customer_once(
    pbx: PbxUnderTest,
    server: LiveServer,
    crm: dict[str, Any],
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    sipp_processes.append(start_phone(pbx, "1001", 1000, tmp_path))
    sipp_processes.append(start_carrier_phone(pbx, tmp_path, answer_after_ms=1000))
    session = await asyncio.to_thread(server.login, "agent1001")
    body = {
        "number": CALLER_MOBILE,
        "request_id": "dial-test-0001",
        "customer_id": crm["customer"].id,
    }
    first = await asyncio.to_thread(server.post, "/api/dial", session, body)
    again = await asyncio.to_thread(server.post, "/api/dial", session, body)  # a double click
    assert first["new"] is True and again["new"] is False
    assert again["call_id"] == first["call_id"]
    rows = await calls_in(crm["db"], 1, timeout=60)
    assert len(rows) == 1
    call = rows[0]
    assert (call.direction, call.request_id, call.customer_id) == (
        "outbound",
        "dial-test-0001",
        crm["customer"].id,
    )
    assert (
        call.answered_at is not None and call.linkedid and not call.linkedid.startswith("pending")
    )
