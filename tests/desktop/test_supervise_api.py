"""Supervisor listen / whisper / barge (agent_desktop/supervise/, cti/supervise.py), in
process: who may spy on which call, what is sent to the PBX, the session row and its audit."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from desk_world import PASSWORD, World, audit_rows, login_ok
from sqlalchemy import select, update

from agent_desktop.services import BRIDGE_KEY
from agent_desktop.supervise.http import SPY_KEY
from crm_core.models import User
from crm_core.users import create_user
from cti.ami_errors import AmiNotConnected
from cti.models import SpySession

AGENT_PHONE = "PJSIP/1001"
AGENT_CHANNEL = "PJSIP/1001-0000002a"
SUPERVISOR_PHONE = "PJSIP/1009"
LIVE = "1700000000.11"


@dataclass(frozen=True)
class Event:
    name: str
    headers: Mapping[str, str]


@dataclass
class FakeAmi:
    """Records the actions; the channel list has the agent's leg of the live call."""

    actions: list[dict[str, Any]] = field(default_factory=list)
    fail_originate: bool = False

    async def action(
        self, server: str, action: Mapping[str, Any], *, timeout: float | None = None
    ) -> Any:
        self.actions.append(dict(action))
        if action["Action"] == "CoreShowChannels":
            legs = [
                {"Channel": "PJSIP/carrier-00000029", "Linkedid": LIVE},
                {"Channel": "PJSIP/10010-00000031", "Linkedid": "other"},
                {"Channel": AGENT_CHANNEL, "Linkedid": LIVE},
            ]
            return SimpleNamespace(events=[SimpleNamespace(headers=h) for h in legs])
        if self.fail_originate:
            raise AmiNotConnected("AMI pbx is not connected")
        return SimpleNamespace(headers={"Response": "Success"}, events=())

    def originates(self) -> list[dict[str, Any]]:
        return [a for a in self.actions if a["Action"] == "Originate"]


async def _set_phone(world: World, username: str, phone: str | None) -> None:
    async with world.db.transaction() as session:
        await session.execute(
            update(User).where(User.username == username).values(phone_interface=phone)
        )


async def _call(client: TestClient[Any, Any], linkedid: str, answered: bool = True) -> None:
    """A queue call, as the tracker sees it from AMI: entered, rang agent_east, answered."""
    bridge = client.app[BRIDGE_KEY]
    server = client.app[SPY_KEY].server
    steps = [
        ("Newchannel", {"Uniqueid": linkedid, "Context": "from-carrier", "Exten": "4008"}),
        ("QueueCallerJoin", {"Queue": "hotline"}),
        ("AgentCalled", {"DestUniqueid": linkedid + "9", "Interface": AGENT_PHONE}),
    ]
    if answered:
        steps.append(("AgentConnect", {"DestUniqueid": linkedid + "9", "Interface": AGENT_PHONE}))
    for name, headers in steps:
        bridge.tracker.handle(server, Event(name, {"Linkedid": linkedid, **headers}))


@pytest.fixture
async def spying(client: TestClient[Any, Any], world: World) -> FakeAmi:
    for username, role, region in (("sup_north", "supervisor", "华北"), ("aud", "auditor", None)):
        row = await create_user(
            world.db,
            {"username": username, "display_name": username, "role": role, "region": region},
            password=PASSWORD,
        )
        world.users[username] = row.id
    for username, phone in (
        ("agent_east", AGENT_PHONE),
        ("sup_east", SUPERVISOR_PHONE),
        ("sup_north", "PJSIP/1019"),
        ("admin1", "PJSIP/1029"),
    ):
        await _set_phone(world, username, phone)
    fake = FakeAmi()
    client.app[SPY_KEY].ami = fake
    await _call(client, LIVE)
    return fake


async def _spy(
    client: TestClient[Any, Any], csrf: str, linkedid: str, mode: Any, request_id: str = ""
) -> Any:
    body = {"mode": mode, "request_id": request_id} if request_id else {"mode": mode}
    return await client.post(
        f"/api/calls/{linkedid}/spy", json=body, headers={"X-CSRF-Token": csrf}
    )


async def _error(response: Any, status: int) -> str:
    assert response.status == status, await response.text()
    error_id: str = (await response.json())["error_id"]
    return error_id


@pytest.mark.parametrize("username", ["agent_east", "aud", "tech_east"])
async def test_only_supervisors_and_admins_may_spy(
    client: TestClient[Any, Any], world: World, spying: FakeAmi, username: str
) -> None:
    csrf = await login_ok(client, username)
    assert await _error(await _spy(client, csrf, LIVE, "listen"), 403) == "forbidden"
    refusals = await audit_rows(world.db, "access_denied")
    assert refusals[-1].user_id == world.users[username]
    assert refusals[-1].object_id == f"/api/calls/{LIVE}/spy"
    assert spying.actions == [] and await audit_rows(world.db, "spy_start") == []


async def test_a_supervisor_of_another_region_is_refused_and_audited(
    client: TestClient[Any, Any], world: World, spying: FakeAmi
) -> None:
    csrf = await login_ok(client, "sup_north")
    assert await _error(await _spy(client, csrf, LIVE, "listen"), 403) == "spy_out_of_scope"
    (refusal,) = await audit_rows(world.db, "access_denied")
    assert refusal.user_id == world.users["sup_north"]
    assert refusal.object_type == "call" and refusal.object_id == LIVE
    assert refusal.detail is not None and refusal.detail["reason"] == "spy_out_of_scope"
    assert spying.originates() == []


async def test_a_supervisor_without_a_phone_is_told_so(
    client: TestClient[Any, Any], world: World, spying: FakeAmi
) -> None:
    await _set_phone(world, "sup_east", None)
    csrf = await login_ok(client, "sup_east")
    response = await _spy(client, csrf, LIVE, "listen")
    assert await _error(response, 409) == "supervisor_no_phone"
    assert "phone" in (await response.json())["message"]


async def test_only_a_live_answered_call_can_be_spied_on(
    client: TestClient[Any, Any], world: World, spying: FakeAmi
) -> None:
    csrf = await login_ok(client, "sup_east")
    assert await _error(await _spy(client, csrf, "1.404", "listen"), 404) == "call_not_live"
    await _call(client, "1700000000.12", answered=False)
    response = await _spy(client, csrf, "1700000000.12", "listen")
    assert await _error(response, 409) == "call_not_answered"
    # The supervisor's own phone took the call: nothing to listen to.
    await _set_phone(world, "sup_east", AGENT_PHONE)
    csrf = await login_ok(client, "sup_east")
    assert await _error(await _spy(client, csrf, LIVE, "listen"), 409) == "spy_own_phone"
    assert spying.originates() == []


async def test_bad_mode_and_missing_csrf_are_refused(
    client: TestClient[Any, Any], spying: FakeAmi
) -> None:
    csrf = await login_ok(client, "sup_east")
    assert await _error(await _spy(client, csrf, LIVE, "shout"), 422) == "validation_failed"
    response = await client.post(f"/api/calls/{LIVE}/spy", json={"mode": "listen"})
    assert await _error(response, 403) == "csrf_failed"
    assert spying.actions == []


@pytest.mark.parametrize(
    ("mode", "options"), [("listen", "qbES"), ("whisper", "qbESw"), ("barge", "qbESB")]
)
async def test_the_supervisors_phone_is_rung_into_chanspy_on_the_agents_leg(
    client: TestClient[Any, Any], world: World, spying: FakeAmi, mode: str, options: str
) -> None:
    csrf = await login_ok(client, "sup_east")
    response = await _spy(client, csrf, LIVE, mode, "click-0001")
    assert response.status == 201, await response.text()
    body = await response.json()
    assert body["mode"] == mode and body["spied_channel"] == AGENT_CHANNEL
    (originate,) = spying.originates()
    assert originate["Channel"] == SUPERVISOR_PHONE
    assert originate["Application"] == "ChanSpy"
    assert originate["Data"] == f"{AGENT_CHANNEL},{options}"
    assert originate["ActionID"] == "spy:click-0001"
    assert originate["ChannelId"] == "spy-click-0001"
    assert originate["Async"] == "true"
    (start,) = await audit_rows(world.db, "spy_start")
    assert start.user_id == world.users["sup_east"] and start.object_id == LIVE
    assert start.detail is not None
    assert start.detail["mode"] == mode and start.detail["agent_id"] == world.users["agent_east"]

    again = await _spy(client, csrf, LIVE, mode, "click-0001")  # a browser retry
    assert again.status == 200 and len(spying.originates()) == 1


async def test_the_supervisor_legs_hangup_ends_the_session_with_its_duration(
    client: TestClient[Any, Any], world: World, spying: FakeAmi
) -> None:
    csrf = await login_ok(client, "admin1")  # an admin spies in every region
    assert (await _spy(client, csrf, LIVE, "whisper", "click-0002")).status == 201
    service = client.app[SPY_KEY]
    answered = time.time()
    for name, headers in (
        (
            "OriginateResponse",
            {"ActionID": "spy:click-0002", "Response": "Success", "Channel": "PJSIP/1029-01"},
        ),
        ("Hangup", {"Uniqueid": "spy-click-0002", "Cause-txt": "Normal Clearing"}),
        ("Hangup", {"Uniqueid": "spy-click-0002"}),  # a second report changes nothing
    ):
        at = answered if name == "OriginateResponse" else answered + 12.5
        service.on_event(service.server, Event(name, {**headers, "Timestamp": str(at)}))
    await service.drain()
    async with world.db.transaction() as session:
        row = (await session.scalars(select(SpySession))).one()
    assert row.channel == "PJSIP/1029-01" and row.mode == "whisper"
    assert row.answered_at is not None and row.ended_at is not None
    assert (row.ended_at - row.answered_at).total_seconds() == pytest.approx(12.5, abs=0.01)
    (end,) = await audit_rows(world.db, "spy_end")
    assert end.user_id == world.users["admin1"] and end.object_id == LIVE
    assert end.detail is not None and end.detail["seconds"] == pytest.approx(12.5)
    assert end.detail["answered"] is True


async def test_an_unanswered_or_unplaced_spy_call_ends_at_once(
    client: TestClient[Any, Any], world: World, spying: FakeAmi
) -> None:
    csrf = await login_ok(client, "sup_east")
    assert (await _spy(client, csrf, LIVE, "listen", "click-0003")).status == 201
    service = client.app[SPY_KEY]
    failure = {"ActionID": "spy:click-0003", "Response": "Failure", "Reason": "3"}
    service.on_event(service.server, Event("OriginateResponse", failure))
    await service.drain()
    spying.fail_originate = True
    response = await _spy(client, csrf, LIVE, "barge", "click-0004")
    assert await _error(response, 503) == "spy_failed"
    ends = await audit_rows(world.db, "spy_end")
    assert [e.detail["seconds"] if e.detail else None for e in ends] == [0.0, 0.0]
    assert all(e.detail and e.detail["answered"] is False for e in ends)
    async with world.db.transaction() as session:
        rows = (await session.scalars(select(SpySession))).all()
    assert len(rows) == 2 and all(r.ended_at is not None for r in rows)


async def test_the_wallboard_offers_the_buttons_to_supervisors_only(
    client: TestClient[Any, Any], spying: FakeAmi
) -> None:
    bridge = client.app[BRIDGE_KEY]
    member = {"Queue": "hotline", "Interface": AGENT_PHONE, "MemberName": "agent_east"}
    bridge.agents.apply(client.app[SPY_KEY].server, "QueueMember", {**member, "Status": "2"})
    await login_ok(client, "sup_east")
    board = await (await client.get("/api/wallboard")).json()
    assert [a["linkedid"] for a in board["agents"]] == [LIVE]
    page = await (await client.get("/wallboard", headers={"Accept": "text/html"})).text()
    assert "/static/wallboard_spy.js" in page and 'data-barge="强插"' in page
    await login_ok(client, "aud")
    page = await (await client.get("/wallboard", headers={"Accept": "text/html"})).text()
    assert "wallboard_spy.js" not in page
