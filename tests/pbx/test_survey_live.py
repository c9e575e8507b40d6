"""The IVR satisfaction survey, end to end: real Asterisk, SIPp callers keying real RFC 2833
DTMF, the real server.

The score belongs to the call it was given on: an inbound caller's score is stored on that
call whether or not they have an open follow-up, and changes no follow-up; a follow-up call
the representative transfers to the survey completes that follow-up with the score. A
timeout, a key outside 1-5 gets the question once more, then no score, never a wrong one.

SIPp plays its keys on its own clock, so each test hangs the agent up (AMI Hangup) a moment
before the caller keys, timed from the caller's answer: the survey is then asking.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ami_tap import AmiTap
from live_server import LiveServer, live_server
from pbx_crm import demo_crm
from pbx_harness import CALLER_MOBILE, PbxUnderTest, Sipp, start_phone
from sqlalchemy import select

from crm_core.db import Database
from crm_core.events import EventBus
from crm_core.models import PhoneNumber, User
from crm_core.users import create_user
from cti.models import Call
from sms_gateway.outbox import enqueue_notice
from ticketing.context import TicketingContext
from ticketing.field import set_mobile
from ticketing.journal import Actor
from ticketing.models import FollowUp, ServiceRequest
from ticketing.policy import Policy
from ticketing.requests import ServiceRequestService
from ticketing.states import WorkOrderAction
from ticketing.work_orders import FieldReport, WorkOrderService

pytestmark = [pytest.mark.pbx, pytest.mark.usefixtures("calls_cleared")]
SCORE_AT_S = 42.0  # after the answer: past the IVR (about 20 s), the ring and some talk
KEY_LEAD_S = 3.0  # the agent hangs up this long before the first key: the prompt is playing
TECH_MOBILE = "+8613800000001"


@pytest.fixture
async def crm(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    async with demo_crm(tmp_path / "survey.db") as crm:
        yield crm


@pytest.fixture(autouse=True)
def own_media_ports() -> None:
    Sipp._media_port = max(Sipp._media_port, 42000 + (os.getpid() % 500) * 40)


@pytest.fixture
def server(pbx: PbxUnderTest, crm: dict[str, Any], tmp_path: Path) -> Any:
    with live_server(pbx, crm["url"], tmp_path) as running:
        yield running


async def follow_up_due(db: Database, customer_id: int, users: dict[str, int]) -> FollowUp:
    """A request through the whole loop (review, dispatch, field work) to its follow-up, with
    ticketing's own services: the follow-up is due and assigned to a representative."""
    tech = await create_user(
        db,
        {"username": "tech_survey", "display_name": "服务工程师", "role": "technician",
         "office": "合肥服务站", "region": "华东"},
        password="tech-password-9",
    )  # fmt: skip
    ctx = TicketingContext(
        db, notify=enqueue_notice, bus=EventBus(), policy=Policy.from_settings(db.settings)
    )
    await set_mobile(ctx, tech.id, TECH_MOBILE)
    agent, supervisor = Actor.user(users["agent1001"]), Actor.user(users["supervisor"])
    requests = ServiceRequestService(ctx)
    row = await requests.create({"customer_id": customer_id, "description": "无法启动"}, agent)
    await requests.act(row.id, "submit", agent)
    await requests.act(row.id, "start_review", supervisor)
    await requests.act(row.id, "approve", supervisor, office="合肥服务站")
    orders = WorkOrderService(ctx)
    order = await orders.dispatch(row.id, tech.id, supervisor)
    field = Actor.sms(tech.id, TECH_MOBILE)
    await orders.report(order.id, FieldReport(WorkOrderAction.ACCEPT), field)
    await orders.report(order.id, FieldReport(WorkOrderAction.COMPLETE, text="已修复"), field)
    async with db.transaction() as session:
        follow_up = await session.scalar(select(FollowUp).where(FollowUp.request_id == row.id))
    assert follow_up is not None and follow_up.state == "pending"
    return follow_up


def survey_caller(
    pbx: PbxUnderTest, workdir: Path, first: str, second: str, gap_s: float = 3.0
) -> Sipp:
    """The caller: no menu key (the queue), then `first` and `gap_s` later `second`. Keys
    must rise in sip-tester's order (see carrier_survey.xml): 1-9, *, #."""
    s = pbx.settings
    args = [
        f"127.0.0.1:{s.sip_port}", "-s", s.hotline_number, "-p", str(s.carrier_port),
        "-key", "caller", CALLER_MOBILE, "-key", "caller_name", CALLER_MOBILE, "-m", "1",
    ]  # fmt: skip
    return Sipp(
        workdir / "carrier",
        "carrier_survey.xml",
        args,
        keys={"score1": first, "score2": second},
        replace={"SCORE_AT_MS": str(int(SCORE_AT_S * 1000)), "GAP_MS": str(int(gap_s * 1000))},
    )


async def wait_event(ami: AmiTap, name: str, start: int, timeout: float = 90, **fields: str) -> Any:
    return await asyncio.to_thread(ami.wait_event, name, timeout, start, **fields)


async def hang_up_agent_before_the_keys(ami: AmiTap, start: int) -> None:
    """Once the agent talks, hang the agent's leg up KEY_LEAD_S before the caller keys."""
    await asyncio.to_thread(
        ami.wait_for,
        lambda e: (
            e.get("Event") == "Newstate"
            and e.get("ChannelStateDesc") == "Up"
            and e.get("Channel", "").startswith("PJSIP/carrier-")
        ),
        60,
        start,
    )
    answered_at = time.monotonic()
    connect = await wait_event(ami, "AgentConnect", start)
    # Not a wait for an event: SIPp keys on its own clock, counted from this answer.
    await asyncio.sleep(max(0.0, answered_at + SCORE_AT_S - KEY_LEAD_S - time.monotonic()))
    await asyncio.to_thread(ami.action, "Hangup", Channel=connect["DestChannel"])


async def surveyed_call(db: Database, timeout: float = 60) -> Call:
    deadline = time.monotonic() + timeout
    while True:
        async with db.transaction() as session:
            call = await session.scalar(select(Call).order_by(Call.id.desc()))
        if call is not None and call.status == "ended" and call.survey_score is not None:
            return call
        if time.monotonic() > deadline:
            raise AssertionError(f"no surveyed call: {call and (call.status, call.survey_score)}")
        await asyncio.sleep(0.3)


def survey_reads(ami: AmiTap, start: int) -> list[str]:
    """What each Read of the survey got, in order ('' for a timeout)."""
    return [
        e.get("Value", "")
        for e in ami.events[start:]
        if e.get("Event") == "VarSet" and e.get("Variable") == "SURVEY_SCORE"
    ]


async def call_ended(ami: AmiTap, start: int) -> None:
    await asyncio.to_thread(
        ami.wait_for,
        lambda e: e.get("Event") == "Hangup" and e.get("Channel", "").startswith("PJSIP/carrier-"),
        120,
        start,
    )


async def test_inbound_score_belongs_to_the_call_not_to_an_open_follow_up(
    pbx: PbxUnderTest,
    server: LiveServer,
    crm: dict[str, Any],
    ami: AmiTap,
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    follow_up = await follow_up_due(crm["db"], crm["customer"].id, crm["users"])
    sipp_processes.append(start_phone(pbx, "1001", 1000, tmp_path))
    start = ami.mark()
    sipp_processes.append(survey_caller(pbx, tmp_path, "4", "silence"))
    await hang_up_agent_before_the_keys(ami, start)
    call = await surveyed_call(crm["db"])
    assert (call.survey_score, call.agent_id) == (4, crm["users"]["agent1001"])
    assert call.direction == "inbound" and call.surveyed_at is not None
    assert survey_reads(ami, start) == ["4"]
    async with crm["db"].transaction() as session:
        untouched = await session.get(FollowUp, follow_up.id)
        request = await session.get(ServiceRequest, follow_up.request_id)
    assert untouched is not None and (untouched.state, untouched.score) == ("pending", None)
    assert request is not None and request.state == "follow_up"


async def test_no_key_is_asked_again_once(
    pbx: PbxUnderTest,
    server: LiveServer,
    crm: dict[str, Any],
    ami: AmiTap,
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    sipp_processes.append(start_phone(pbx, "1001", 1000, tmp_path))
    start = ami.mark()
    # Nothing while asked (the first Read times out 6 s after its prompt), then 2 while
    # asked again.
    sipp_processes.append(survey_caller(pbx, tmp_path, "silence", "2", gap_s=14.0))
    await hang_up_agent_before_the_keys(ami, start)
    call = await surveyed_call(crm["db"])
    assert call.survey_score == 2
    assert survey_reads(ami, start) == ["", "2"]


async def test_keys_outside_the_scale_twice_give_no_score(
    pbx: PbxUnderTest,
    server: LiveServer,
    crm: dict[str, Any],
    ami: AmiTap,
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    sipp_processes.append(start_phone(pbx, "1001", 1000, tmp_path))
    start = ami.mark()
    sipp_processes.append(survey_caller(pbx, tmp_path, "8", "star"))
    await hang_up_agent_before_the_keys(ami, start)
    await call_ended(ami, start)
    assert survey_reads(ami, start) == ["8", "*"]
    deadline = time.monotonic() + 30
    while True:
        async with crm["db"].transaction() as session:
            call = await session.scalar(select(Call).order_by(Call.id.desc()))
        if call is not None and call.status == "ended":
            break
        assert time.monotonic() < deadline, "the call never ended in the log"
        await asyncio.sleep(0.3)
    assert call.survey_score is None and call.outcome == "answered"


async def test_follow_up_call_transferred_to_the_survey_completes_the_follow_up(
    pbx: PbxUnderTest,
    server: LiveServer,
    crm: dict[str, Any],
    ami: AmiTap,
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    follow_up = await follow_up_due(crm["db"], crm["customer"].id, crm["users"])
    async with crm["db"].transaction() as session:
        representative = await session.get(User, follow_up.assignee_id)
        phone_id = await session.scalar(
            select(PhoneNumber.id).where(PhoneNumber.customer_id == crm["customer"].id)
        )
    assert representative is not None and representative.phone_interface
    extension = representative.phone_interface.removeprefix("PJSIP/")
    sipp_processes.append(start_phone(pbx, extension, 1000, tmp_path))
    customer = Sipp(
        tmp_path / "customer",
        "customer_answer_survey.xml",
        ["-p", str(pbx.settings.carrier_port)],
        1000,
        keys={"score1": "5"},
        replace={"SCORE_AT_MS": str(int(SCORE_AT_S * 1000))},
    )
    sipp_processes.append(customer)
    session = await asyncio.to_thread(server.login, representative.username)
    start = ami.mark()
    body = {"phone_id": phone_id, "request_id": "follow-up-survey-0001"}
    dialled = await asyncio.to_thread(
        server.post, f"/tickets/follow-ups/{follow_up.id}/dial", session, body
    )
    await asyncio.to_thread(
        ami.wait_for,
        lambda e: (
            e.get("Event") == "DialEnd"
            and e.get("DialStatus") == "ANSWER"
            and e.get("DestChannel", "").startswith("PJSIP/carrier-")
        ),
        90,
        start,
    )
    answered_at = time.monotonic()
    async with crm["db"].transaction() as s:
        call = await s.get(Call, dialled["call_id"])
    assert call is not None
    # The desktop attaches the follow-up to its call once the PBX named it (tickets.js).
    await asyncio.to_thread(
        server.post, f"/api/follow-ups/{follow_up.id}/call", session, {"linkedid": call.linkedid}
    )
    await asyncio.sleep(max(0.0, answered_at + SCORE_AT_S - KEY_LEAD_S - time.monotonic()))
    sent = await asyncio.to_thread(
        server.post, f"/api/calls/{dialled['call_id']}/survey", session, {}
    )
    assert sent["survey"] == "started" and sent["channel"].startswith("PJSIP/carrier-")

    scored = await surveyed_call(crm["db"])
    assert scored.id == dialled["call_id"] and scored.survey_score == 5
    async with crm["db"].transaction() as s:
        done = await s.get(FollowUp, follow_up.id)
    assert done is not None and (done.state, done.score, done.score_source) == (
        "completed",
        5,
        "ivr",
    )
