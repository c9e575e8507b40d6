"""Calls and their recordings belong to the service request they were about, end to end:
real Asterisk, SIPp phones and carrier, the real server. Three of the four ways a call is
linked go through the PBX here: (a) a request opened from the pop during the call, (b) a
request number keyed in the IVR, (c) a call placed from the request's page. The fourth, by
hand from the call history, is in tests/desktop/test_call_request_links.py.
"""

from __future__ import annotations

import asyncio
import os
import time
import urllib.error
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from live_server import AgentBrowser, LiveServer, live_server
from pbx_crm import demo_crm
from pbx_harness import CALLER_MOBILE, PbxUnderTest, Sipp, place_call, start_carrier_phone
from pbx_harness import start_phone as phone
from sqlalchemy import select
from test_ivr_identify import UNKNOWN_CALLER, _ivr_call
from test_pop_live import pop_update, ready_pop

from crm_core.customers import CustomerService
from crm_core.db import Database
from crm_core.models import PhoneNumber
from cti.models import Call
from recordings.models import Recording

pytestmark = [pytest.mark.pbx, pytest.mark.usefixtures("calls_cleared")]


@pytest.fixture
async def crm(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    async with demo_crm(tmp_path / "links.db") as crm:
        yield crm


@pytest.fixture(autouse=True)
def own_media_ports() -> None:
    Sipp._media_port = max(Sipp._media_port, 41000 + (os.getpid() % 500) * 40)


@pytest.fixture
def server(pbx: PbxUnderTest, crm: dict[str, Any], tmp_path: Path) -> Any:
    with live_server(pbx, crm["url"], tmp_path) as running:
        yield running


async def post(server: LiveServer, session: tuple[str, str], path: str, body: Any) -> Any:
    try:
        return await asyncio.to_thread(server.post, path, session, body)
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{path}: {exc.code} {exc.read().decode()}") from None


async def open_request(server: LiveServer, session: tuple[str, str], crm: dict[str, Any]) -> Any:
    body = {"customer_id": crm["customer"].id, "category": "repair", "description": "刹车异响"}
    return await post(server, session, "/api/tickets", body)


async def linked_call_and_recording(
    db: Database, request_id: int, timeout: float = 90
) -> tuple[Call, Recording]:
    """The ended call linked to the request, and its ingested recording linked too."""
    deadline = time.monotonic() + timeout
    while True:
        async with db.transaction() as session:
            call = await session.scalar(select(Call).where(Call.service_request_id == request_id))
            recording = await session.scalar(
                select(Recording).where(Recording.service_request_id == request_id)
            )
        done = call is not None and call.status == "ended" and recording is not None
        if done and recording is not None and recording.state == "complete":
            assert call is not None
            return call, recording
        if time.monotonic() > deadline:
            raise AssertionError(f"request {request_id}: call {call}, recording {recording}")
        await asyncio.sleep(0.5)


async def test_request_opened_from_the_pop_owns_the_call_and_its_recording(
    pbx: PbxUnderTest,
    server: LiveServer,
    crm: dict[str, Any],
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    sipp_processes.append(phone(pbx, "1001", 1000, tmp_path))
    agent = AgentBrowser(server, "agent1001")
    await agent.connect()
    session = await asyncio.to_thread(server.login, "agent1001")
    try:
        sipp_processes.append(
            place_call(pbx, tmp_path, caller=CALLER_MOBILE, hold_ms=35000, dtmf="9")
        )
        pop = await agent.wait_for(ready_pop)
        await agent.wait_for(pop_update("connected"))
        body = {
            "customer_id": crm["customer"].id,
            "category": "repair",
            "description": "来电报修:刹车异响",
            "call_linkedid": pop["pop"]["linkedid"],
        }
        created = await post(server, session, "/api/tickets", body)
        await agent.wait_for(pop_update("ended"))
    finally:
        await agent.close()

    call, recording = await linked_call_and_recording(crm["db"], created["id"])
    assert call.linkedid == pop["pop"]["linkedid"] and call.agent_id == crm["users"]["agent1001"]
    assert recording.call_id == call.id
    # The request's page lists the call and offers its recording.
    timeline = await asyncio.to_thread(
        server.get_json, f"/api/tickets/{created['id']}/timeline", session
    )
    kinds = [e["kind"] for e in timeline["timeline"]]
    assert "call" in kinds and "recording" in kinds
    (played,) = [e for e in timeline["timeline"] if e["kind"] == "recording"]
    assert played["link"]


async def test_request_number_keyed_in_the_ivr_links_the_call(
    pbx: PbxUnderTest,
    server: LiveServer,
    crm: dict[str, Any],
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    session = await asyncio.to_thread(server.login, "agent1001")
    await open_request(server, session, crm)
    created = await open_request(server, session, crm)
    sipp_processes.append(phone(pbx, "1001", 1000, tmp_path))
    # FW000002 is keyed as 2# on the phone (as the prompt asks: the number, then #). Not 1:
    # the menu key is 1, and the same DTMF packet twice in a row reads as one press.
    assert created["number"] == "FW000002"
    carrier = _ivr_call(pbx, tmp_path / "ivr", UNKNOWN_CALLER, "2ppppp")
    sipp_processes.append(carrier)

    call, recording = await linked_call_and_recording(crm["db"], created["id"], timeout=120)
    assert call.business_key == "sr:2" and call.customer_id == crm["customer"].id
    assert recording.call_id == call.id


async def test_call_placed_from_the_request_page_belongs_to_the_request(
    pbx: PbxUnderTest,
    server: LiveServer,
    crm: dict[str, Any],
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    session = await asyncio.to_thread(server.login, "agent1001")
    created = await open_request(server, session, crm)
    sipp_processes.append(phone(pbx, "1001", 1000, tmp_path))
    sipp_processes.append(start_carrier_phone(pbx, tmp_path, answer_after_ms=1000))
    body = {"phone_id": crm["phone_id"], "request_id": "request-page-dial-0001"}
    dialled = await post(server, session, f"/tickets/{created['id']}/dial", body)
    assert dialled["new"] is True and "number" not in dialled

    call, recording = await linked_call_and_recording(crm["db"], created["id"], timeout=120)
    assert call.id == dialled["call_id"] and call.direction == "outbound"
    assert recording.call_id == call.id

    # Another customer's phone is refused, and nothing is dialled.
    other = await CustomerService(crm["db"]).create({"name": "另一家公司"}, ["13700001111"])
    async with crm["db"].transaction() as s:
        foreign = await s.scalar(select(PhoneNumber.id).where(PhoneNumber.customer_id == other.id))
    refused = {"phone_id": foreign, "request_id": "request-page-dial-0002"}
    with pytest.raises(urllib.error.HTTPError) as caught:
        await asyncio.to_thread(server.post, f"/tickets/{created['id']}/dial", session, refused)
    assert caught.value.code == 403
    caught.value.close()
