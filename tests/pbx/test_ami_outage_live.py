"""A call that begins while the server's AMI link is down is not lost: real Asterisk, real
SIPp phones, the real server, with the link cut by a TCP relay the test controls. When the
link comes back, the resync adopts the call: the ringing agent gets one pop, and the call log
gets one row, answered by that agent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ami_tap import AmiTap
from live_server import AgentBrowser, LiveServer, live_server
from pbx_crm import demo_crm
from pbx_harness import CALLER_MOBILE, PbxUnderTest, Sipp, place_call, start_phone
from tcp_relay import TcpRelay
from test_pop_live import calls_in, pop_update, ready_pop

pytestmark = [pytest.mark.pbx, pytest.mark.usefixtures("calls_cleared")]


@pytest.fixture
async def crm(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    async with demo_crm(tmp_path / "outage.db") as crm:
        yield crm


@dataclass
class CutLink:
    server: LiveServer
    relay: TcpRelay
    agent: AgentBrowser
    log: str = ""


@asynccontextmanager
async def server_behind_a_relay(
    pbx: PbxUnderTest, crm: dict[str, Any], tmp_path: Path
) -> AsyncIterator[CutLink]:
    """The real server with its AMI link through a relay, agent1001's desktop connected, and
    the link up (the hello carries the queue states read at the first resync)."""
    relay = TcpRelay(pbx.settings.ami_host, pbx.settings.ami_port)
    await relay.start()
    with live_server(
        pbx, crm["url"], tmp_path, ami_port=relay.port, ami_reconnect_max_seconds=1
    ) as server:
        agent = AgentBrowser(server, "agent1001")
        await agent.connect()
        link = CutLink(server, relay, agent)
        try:
            await agent.wait_for(lambda m: m.get("type") == "hello" and m["agent_state"])
            yield link
        finally:
            await agent.close()
            await relay.cut()
        link.log = server.log.read_text()


async def test_call_begun_during_an_ami_outage_pops_once_and_is_logged_once(
    pbx: PbxUnderTest,
    crm: dict[str, Any],
    ami: AmiTap,
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    async with server_behind_a_relay(pbx, crm, tmp_path) as link:
        agent = link.agent
        await link.relay.cut()
        sipp_processes.append(start_phone(pbx, "1001", 7000, tmp_path))
        start = ami.mark()
        sipp_processes.append(place_call(pbx, tmp_path, hold_ms=30000, dtmf="9"))
        await asyncio.to_thread(ami.wait_event, "AgentCalled", 90, start, Interface="PJSIP/1001")
        assert [m for m in agent.messages if m.get("type") == "pop"] == []
        restored_at = time.monotonic()
        await link.relay.start()
        pop = await agent.wait_for(ready_pop, timeout=30)
        assert pop["pop"]["state"] == "ringing" and pop["pop"]["caller"] == CALLER_MOBILE
        assert pop["pop"]["customer_360"]["customer"]["name"] == "阜阳顺达物流有限公司"
        assert pop["_at"] - restored_at < 10
        await agent.wait_for(pop_update("connected"), timeout=30)
        await agent.wait_for(pop_update("ended"), timeout=60)
    log = link.log
    popped = {m["pop"]["id"] for m in agent.messages if m.get("type") == "pop"}
    assert len(popped) == 1
    rows = await calls_in(crm["db"], 1)
    assert len(rows) == 1, [(r.linkedid, r.outcome) for r in rows]
    (call,) = rows
    assert (call.outcome, call.agent_id, call.customer_id) == (
        "answered",
        crm["agent"],
        crm["customer"].id,
    )
    assert call.recording_path and call.talk_seconds
    assert "1 call(s) that began meanwhile recovered" in log


async def test_call_begun_and_ended_during_an_ami_outage_is_logged_from_the_call_records(
    pbx: PbxUnderTest,
    crm: dict[str, Any],
    ami: AmiTap,
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    async with server_behind_a_relay(pbx, crm, tmp_path) as link:
        agent = link.agent
        await link.relay.cut()
        sipp_processes.append(start_phone(pbx, "1001", 1000, tmp_path))
        start = ami.mark()
        sipp_processes.append(place_call(pbx, tmp_path, hold_ms=26000, dtmf="9"))
        connect = await asyncio.to_thread(
            ami.wait_event, "AgentConnect", 90, start, Interface="PJSIP/1001"
        )
        await asyncio.to_thread(ami.wait_event, "Hangup", 60, start, Uniqueid=connect["Uniqueid"])
        await link.relay.start()
        rows = await calls_in(crm["db"], 1, timeout=30)
    log = link.log
    assert [m for m in agent.messages if m.get("type") == "pop"] == []  # it was over
    assert len(rows) == 1, [(r.linkedid, r.outcome) for r in rows]
    (call,) = rows
    assert call.linkedid == connect["Linkedid"] and call.number == CALLER_MOBILE
    assert (call.outcome, call.agent_id, call.customer_id) == (
        "answered",
        crm["agent"],
        crm["customer"].id,
    )
    assert call.talk_seconds and call.talk_seconds > 1 and call.recording_path
    assert "1 call(s) that began meanwhile recovered" in log
