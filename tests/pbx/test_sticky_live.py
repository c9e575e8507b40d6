"""The sticky-agent route end to end: a known caller whose customer has an owning agent is
dialled straight to that agent's phone (Dial, not Queue) before the queue.

Real Asterisk, real SIPp phones, the real server and agent sockets. The owner is agent1002;
agent1001 is the queue agent who must not be bothered while the owner takes the call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from live_server import AgentBrowser, LiveServer, live_server, pops
from pbx_crm import demo_crm
from pbx_harness import CALLER_MOBILE, PbxUnderTest, Sipp, place_call, start_phone
from test_pop_live import browsers, calls_in, member_update, pop_update, ready_pop

pytestmark = [pytest.mark.pbx, pytest.mark.usefixtures("calls_cleared")]
OWNER = "agent1002"


@pytest.fixture
async def crm(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    async with demo_crm(tmp_path / "sticky.db", owner=OWNER) as crm:
        yield crm


@pytest.fixture
def server(pbx: PbxUnderTest, crm: dict[str, Any], tmp_path: Path) -> Any:
    with live_server(pbx, crm["url"], tmp_path) as running:
        yield running


async def owner_can_take_calls(browser: AgentBrowser) -> None:
    """The server knows the owner's queue state (hello, then agent.state updates)."""
    await browser.wait_for(
        lambda m: (
            m.get("type") == "hello" and any(not s["paused"] for s in m.get("agent_state", []))
        )
    )


async def test_owner_answers_and_only_the_owner_is_popped(
    pbx: PbxUnderTest,
    server: LiveServer,
    crm: dict[str, Any],
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    sipp_processes.append(start_phone(pbx, "1001", 1000, tmp_path))
    sipp_processes.append(start_phone(pbx, "1002", 2000, tmp_path))
    queue_agent, owner = await browsers(server, "agent1001", OWNER)
    try:
        await owner_can_take_calls(owner)
        sipp_processes.append(
            place_call(pbx, tmp_path, caller=CALLER_MOBILE, hold_ms=25000, dtmf="9")
        )
        pop = await owner.wait_for(ready_pop)
        assert pop["pop"]["state"] == "ringing"
        assert pop["pop"]["customer_360"]["customer"]["name"] == "阜阳顺达物流有限公司"
        connected = await owner.wait_for(pop_update("connected"))
        assert connected["pop_id"] == pop["pop"]["id"]
        await owner.wait_for(pop_update("ended"))
        assert pops(queue_agent.messages) == []
        assert len(pops(owner.messages)) == 1
    finally:
        for browser in (queue_agent, owner):
            await browser.close()

    rows = await calls_in(crm["db"], 1)
    assert len(rows) == 1, [(r.linkedid, r.outcome) for r in rows]
    (call,) = rows
    assert (call.outcome, call.customer_id) == ("answered", crm["customer"].id)
    assert call.agent_id == crm["users"][OWNER] and call.agent_interface == "PJSIP/1002"
    assert call.talk_seconds and call.talk_seconds > 1
    assert call.recording_path


async def test_owner_does_not_answer_so_the_queue_takes_the_call(
    pbx: PbxUnderTest,
    server: LiveServer,
    crm: dict[str, Any],
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    sipp_processes.append(start_phone(pbx, "1001", 1000, tmp_path))
    sipp_processes.append(start_phone(pbx, "1002", None, tmp_path))
    queue_agent, owner = await browsers(server, "agent1001", OWNER)
    try:
        await owner_can_take_calls(owner)
        sipp_processes.append(
            place_call(pbx, tmp_path, caller=CALLER_MOBILE, hold_ms=30000, dtmf="9")
        )
        first = await owner.wait_for(ready_pop)
        withdrawn = await owner.wait_for(pop_update("withdrawn"), timeout=40)
        assert withdrawn["pop_id"] == first["pop"]["id"]
        pop = await queue_agent.wait_for(ready_pop, timeout=40)
        assert pop["pop"]["customer_360"]["customer"]["name"] == "阜阳顺达物流有限公司"
        assert pop["_at"] > withdrawn["_at"]  # the queue only after the owner's ring ended
        await queue_agent.wait_for(pop_update("connected"))
        await queue_agent.wait_for(pop_update("ended"))
    finally:
        for browser in (queue_agent, owner):
            await browser.close()

    rows = await calls_in(crm["db"], 1)
    assert len(rows) == 1, [(r.linkedid, r.outcome) for r in rows]
    (call,) = rows
    assert call.outcome == "answered" and call.agent_id == crm["users"]["agent1001"]
    assert call.queue == "hotline" and call.talk_seconds


async def test_logged_out_owner_is_skipped_straight_to_the_queue(
    pbx: PbxUnderTest,
    server: LiveServer,
    crm: dict[str, Any],
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    sipp_processes.append(start_phone(pbx, "1001", 1000, tmp_path))
    sipp_processes.append(start_phone(pbx, "1002", 1000, tmp_path))
    queue_agent, owner = await browsers(server, "agent1001", OWNER)
    session = await asyncio.to_thread(server.login, OWNER)
    try:
        await asyncio.to_thread(server.post, "/api/agent/queue", session, {"action": "logout"})
        await owner.wait_for(member_update(True))
        sipp_processes.append(
            place_call(pbx, tmp_path, caller=CALLER_MOBILE, hold_ms=30000, dtmf="9")
        )
        pop = await queue_agent.wait_for(ready_pop, timeout=40)
        assert pop["pop"]["customer_360"]["customer"]["name"] == "阜阳顺达物流有限公司"
        await queue_agent.wait_for(pop_update("ended"))
        assert pops(owner.messages) == []
    finally:
        await asyncio.to_thread(server.post, "/api/agent/queue", session, {"action": "login"})
        for browser in (queue_agent, owner):
            await browser.close()

    (call,) = await calls_in(crm["db"], 1)
    assert call.outcome == "answered" and call.agent_id == crm["users"]["agent1001"]
