"""The whole service loop, starting from a real call.

A SIPp carrier calls the 400 number from a known customer's mobile; the real Asterisk queues
it and rings the SIPp phone of agent1001, whose desktop (a WebSocket client of the real
`hotline serve`) gets the pop. The agent creates a service request from that call; review
approves; the office supervisor dispatches; the work-order SMS goes out through the real
twilio client to the loopback fake Twilio; the technician's signed replies 接单 and
完成 换了刹车片 move the work order; the follow-up's representative records 5; the request
is closed. Each step is checked in the database and in the timeline API.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from live_server import AgentBrowser, LiveServer, _wait_healthy, free_port
from pbx_harness import CALLER_MOBILE, PbxUnderTest, Sipp, place_call, settings_env, start_phone
from sqlalchemy import select

from crm_core import migrate
from crm_core.customers import CustomerService
from crm_core.db import Database
from crm_core.models import User
from crm_core.phones import mask
from crm_core.settings import Settings
from crm_core.users import create_user, ensure_demo_users
from crm_core.vehicles import VehicleService
from cti.models import Call
from sms_gateway.models import SmsInbound, SmsMessage
from ticketing.context import TicketingContext
from ticketing.field import set_mobile
from ticketing.models import FollowUp, ServiceRequest, Transition, WorkOrder

pytestmark = [pytest.mark.pbx, pytest.mark.usefixtures("calls_cleared")]
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sms"))
from fake_twilio import AUTH_TOKEN, FROM_NUMBER, FakeTwilio, send_inbound  # noqa: E402

TECH_MOBILE = "+8613800138001"
OFFICE = "合肥服务站"
T = TypeVar("T")


@pytest.fixture
async def crm(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """Demo staff, an office supervisor for 合肥服务站, tech01's mobile, one known customer."""
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'loop.db'}")
    await asyncio.to_thread(migrate.upgrade, settings)
    db = Database.open(settings)
    await ensure_demo_users(db)
    await create_user(
        db,
        {"username": "hf_sup", "display_name": "合肥站主管 吴伟", "role": "supervisor",
         "office": OFFICE, "region": "华东"},
        password="hotline-demo",
    )  # fmt: skip
    async with db.transaction() as session:
        tech = (await session.scalars(select(User).where(User.username == "tech01"))).one()
    await set_mobile(TicketingContext(db), tech.id, TECH_MOBILE)
    customer = await CustomerService(db).create(
        {"name": "阜阳顺达物流有限公司", "code": "C0000001", "region": "华东", "city": "阜阳"},
        [CALLER_MOBILE],
    )
    vehicle = await VehicleService(db).create(
        {"customer_id": customer.id, "vin": "LZZ1CLVB7KA123456", "plate": "皖K12345"}
    )
    yield {"db": db, "url": settings.database_url, "customer": customer, "vehicle": vehicle,
           "tech": tech.id}  # fmt: skip
    await db.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    provider = await FakeTwilio().start()
    yield provider
    await provider.stop()


@contextmanager
def twilio_server(
    pbx: PbxUnderTest, database_url: str, provider: FakeTwilio, workdir: Path
) -> Iterator[LiveServer]:
    """`hotline serve` as live_server() runs it, but sending SMS through the fake Twilio and
    knowing its public URL, so webhook signatures are checked against the URL really called."""
    port = free_port()
    settings = pbx.settings.replace(
        database_url=database_url,
        http_port=port,
        sms_backend="twilio",
        twilio_account_sid=provider.account_sid,
        twilio_auth_token=AUTH_TOKEN,
        twilio_from=FROM_NUMBER,
        twilio_api_base_url=provider.base_url,
        public_base_url=f"http://127.0.0.1:{port}",
    )
    log = workdir / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "agent_desktop.cli", "serve"],
            env=settings_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=workdir,
        )
    server = LiveServer(settings, process, log)
    try:
        _wait_healthy(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def get(server: LiveServer, path: str, session: tuple[str, str]) -> Any:
    request = urllib.request.Request(
        f"{server.base}{path}", headers={"Cookie": session[0], "Accept": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.loads(response.read())


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = 60) -> T:
    """Poll until `probe` returns something; no timing is asserted, only the outcome."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await probe()
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"never happened: {what}")


async def one(db: Database, model: Any, *where: Any) -> Any:
    async with db.transaction() as session:
        return (await session.scalars(select(model).where(*where))).first()


async def request_in(db: Database, request_id: int, state: str) -> ServiceRequest | None:
    row: ServiceRequest | None = await one(db, ServiceRequest, ServiceRequest.id == request_id)
    return row if row is not None and row.state == state else None


async def order_in(db: Database, order_id: int, state: str) -> WorkOrder | None:
    row: WorkOrder | None = await one(db, WorkOrder, WorkOrder.id == order_id)
    return row if row is not None and row.state == state else None


async def test_a_real_call_becomes_a_closed_service_request(
    pbx: PbxUnderTest,
    crm: dict[str, Any],
    fake: FakeTwilio,
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    db: Database = crm["db"]
    with twilio_server(pbx, crm["url"], fake, tmp_path) as server:
        await _loop(pbx, server, db, crm, fake, sipp_processes, tmp_path)


async def _call_pops(
    pbx: PbxUnderTest, server: LiveServer, sipp_processes: list[Sipp], tmp_path: Path
) -> dict[str, Any]:
    """1. The real call pops on agent1001's desktop with the customer's 360."""
    # SIPp media ports start at 30000 for every instance; runs sharing the machine under
    # other HOTLINE_TEST_PBX_OFFSETs would collide there, so this run moves up by its offset.
    Sipp._media_port = max(Sipp._media_port, 30000 + pbx.settings.sip_port % 10000)
    sipp_processes.append(start_phone(pbx, "1001", 1000, tmp_path))
    desk = AgentBrowser(server, "agent1001")
    await desk.connect()
    try:
        await desk.wait_for(lambda m: m.get("type") == "hello")
        sipp_processes.append(place_call(pbx, tmp_path, caller=CALLER_MOBILE, hold_ms=30000))
        message = await desk.wait_for(lambda m: m.get("type") == "pop", timeout=90)
    finally:
        await desk.close()
    pop: dict[str, Any] = message["pop"]
    assert pop["customer_360"]["customer"]["name"] == "阜阳顺达物流有限公司"
    return pop


async def _loop(
    pbx: PbxUnderTest,
    server: LiveServer,
    db: Database,
    crm: dict[str, Any],
    fake: FakeTwilio,
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    pop = await _call_pops(pbx, server, sipp_processes, tmp_path)
    linkedid = pop["linkedid"]

    # 2. The agent creates the request from the call.
    agent = await asyncio.to_thread(server.login, "agent1001")
    created = await asyncio.to_thread(
        server.post,
        "/api/tickets",
        agent,
        {
            "customer_id": crm["customer"].id,
            "vehicle_id": crm["vehicle"].id,
            "description": "刹车异响，制动距离变长",
            "priority": "high",
            "call_linkedid": linkedid,
        },
    )
    rid = created["id"]
    row = await one(db, ServiceRequest, ServiceRequest.id == rid)
    assert (row.state, row.call_linkedid, row.region) == ("new", linkedid, "华东")
    await asyncio.to_thread(server.post, f"/api/tickets/{rid}/actions", agent, {"action": "submit"})

    # 3. Technical review approves it to the office; the office supervisor dispatches.
    reviewer = await asyncio.to_thread(server.login, "supervisor")
    for body in ({"action": "start_review"}, {"action": "approve", "office": OFFICE}):
        await asyncio.to_thread(server.post, f"/api/tickets/{rid}/actions", reviewer, body)
    assert await request_in(db, rid, "dispatched_to_office")
    boss = await asyncio.to_thread(server.login, "hf_sup")
    board = await asyncio.to_thread(get, server, "/api/dispatch-board", boss)
    assert [r["id"] for r in board["waiting"]] == [rid]
    assert crm["tech"] in [t["id"] for t in board["technicians"]]
    order = await asyncio.to_thread(
        server.post, f"/api/tickets/{rid}/dispatch", boss, {"technician_id": crm["tech"]}
    )
    assert await request_in(db, rid, "in_field")

    # 4. The work-order SMS goes out through the fake Twilio, and its status comes back.
    sms = await eventually(lambda: _async(fake.to(TECH_MOBILE)), "the SMS reached the provider")
    assert f"派工单{order['id']}" in sms[0]["body"] or str(order["id"]) in sms[0]["body"]
    outbox = await eventually(
        lambda: one(db, SmsMessage, SmsMessage.request_id == rid,
                    SmsMessage.provider_status == "delivered"),
        "the delivered callback was stored",
    )  # fmt: skip
    assert outbox.provider_sid == sms[0]["sid"] and outbox.to == TECH_MOBILE

    # 5. The technician's signed replies move the work order.
    inbound = f"{server.base}/sms/inbound"
    async with aiohttp.ClientSession() as http:
        response = await send_inbound(http, inbound, TECH_MOBILE, "接单")
        assert response.status == 200
        assert await order_in(db, order["id"], "accepted")
        response = await send_inbound(http, inbound, TECH_MOBILE, "完成 换了刹车片")
        assert response.status == 200
    done = await order_in(db, order["id"], "done")
    assert done is not None and "换了刹车片" in (done.resolution or "")
    assert await request_in(db, rid, "follow_up")

    # 6. A follow-up was created; its representative records 5; the request is closed.
    follow_up = await one(db, FollowUp, FollowUp.request_id == rid)
    assert follow_up is not None and follow_up.state == "pending"
    rep_user = await one(db, User, User.id == follow_up.assignee_id)
    rep = await asyncio.to_thread(server.login, rep_user.username)
    mine = await asyncio.to_thread(get, server, "/api/follow-ups", rep)
    assert [f["id"] for f in mine["follow_ups"]] == [follow_up.id]
    await asyncio.to_thread(
        server.post, f"/api/follow-ups/{follow_up.id}/result", rep, {"score": 5, "comment": "满意"}
    )
    closed = await request_in(db, rid, "closed")
    assert closed is not None and closed.closed_at is not None
    scored = await one(db, FollowUp, FollowUp.id == follow_up.id)
    assert (scored.state, scored.score) == ("completed", 5)

    await _check_records(server, db, rid, order["id"], linkedid, agent)


async def _async(value: T) -> T:
    return value


async def _check_records(
    server: LiveServer,
    db: Database,
    rid: int,
    order_id: int,
    linkedid: str,
    viewer: tuple[str, str],
) -> None:
    """7. The database and the timeline API tell the same story, in order."""
    async with db.transaction() as session:
        transitions = (
            await session.scalars(
                select(Transition).where(Transition.request_id == rid).order_by(Transition.id)
            )
        ).all()
        replies = (
            await session.scalars(select(SmsInbound).where(SmsInbound.work_order_id == order_id))
        ).all()
    steps = [(t.entity, t.action, t.to_state) for t in transitions]
    assert steps == [
        ("request", "create", "new"),
        ("request", "submit", "submitted"),
        ("request", "start_review", "under_review"),
        ("request", "approve", "dispatched_to_office"),
        ("work_order", "create", "assigned"),
        ("request", "dispatch_work_order", "in_field"),
        ("work_order", "accept", "accepted"),
        ("work_order", "complete", "done"),
        ("request", "complete", "completed"),
        ("request", "start_follow_up", "follow_up"),
        ("follow_up", "record_result", "completed"),
        ("request", "close", "closed"),
    ], steps
    sms_actor = f"sms:{TECH_MOBILE}"
    assert [t.actor for t in transitions if t.entity == "work_order"][1:] == [sms_actor] * 2
    assert sorted(r.outcome or "" for r in replies) == ["applied", "applied"]

    call = await eventually(
        lambda: one(db, Call, Call.linkedid == linkedid, Call.status == "ended"),
        "the call was logged as ended",
        timeout=90,
    )
    assert call.outcome == "answered" and call.customer_id is not None
    body = await asyncio.to_thread(get, server, f"/api/tickets/{rid}/timeline", viewer)
    timeline = body["timeline"]
    kinds = [e["kind"] for e in timeline]
    assert body["request"]["state"] == "closed"
    assert [e["title"] for e in timeline if e["kind"] == "transition"] == [s[1] for s in steps]
    calls = [e for e in timeline if e["kind"] == "call"]
    assert [(c["entity_id"], c["title"]) for c in calls] == [(call.id, "inbound")]
    if call.recording_path:
        assert "recording" in kinds
    assert kinds.count("sms_in") == 2 and "sms_out" in kinds
    assert kinds.index("call") < kinds.index("sms_out") < kinds.index("sms_in")
    assert [e["at"] for e in timeline] == sorted(e["at"] for e in timeline)
    detail = await asyncio.to_thread(get, server, f"/api/tickets/{rid}", viewer)
    assert detail["request"]["state"] == "closed"
    # The viewer's role does not see full numbers: the API masks them like the pages.
    assert detail["sms"][0]["to"] == mask(TECH_MOBILE) != TECH_MOBILE
