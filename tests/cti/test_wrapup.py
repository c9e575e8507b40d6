"""After-call work (cti/wrapup.py) on a real database, with a recording AMI and agent sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from ami_replay import load

from crm_core.db import Database
from crm_core.users import create_user
from cti.agent_state import WRAPUP_REASON, AgentStates
from cti.call_events import AgentCompleted
from cti.models import Call
from cti.tracker import CallTracker
from cti.wrapup import AlreadyExtended, NotYourWrapUp, WrapUpOver, WrapUpService

PHONE = "PJSIP/1001"


class Pbx:
    """Records AMI actions; QueuePause also changes the member state, as Asterisk's event
    (QueueMemberPause) would."""

    def __init__(self, agents: AgentStates) -> None:
        self.agents = agents
        self.actions: list[dict[str, Any]] = []

    async def action(
        self, server: str, action: Mapping[str, Any], *, timeout: float | None = None
    ) -> Any:
        self.actions.append(dict(action))
        if action["Action"] == "QueuePause":
            pause(self.agents, action["Paused"] == "true", action.get("Reason", ""))
        return {}

    def pauses(self) -> list[tuple[str, str]]:
        return [(a["Paused"], a["Reason"]) for a in self.actions if a["Action"] == "QueuePause"]


def pause(agents: AgentStates, paused: bool, reason: str, device: str = "1") -> None:
    headers = {"Queue": "hotline", "Interface": PHONE, "MemberName": "zhang", "Status": device}
    headers |= {"Paused": "1" if paused else "0", "PausedReason": reason if paused else ""}
    agents.apply("pbx", "QueueMemberStatus", headers)


class World:
    def __init__(self, db: Database, agent_id: int, seconds: int) -> None:
        self.db, self.agent_id, self.seconds = db, agent_id, seconds
        self.agents = AgentStates()
        pause(self.agents, False, "")
        self.pbx = Pbx(self.agents)
        self.told: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.service = self.build()

    def build(self) -> WrapUpService:
        async def seconds_for(queue: str | None) -> int:
            return self.seconds

        async def resolve(interface: str, member: str) -> int | None:
            return self.agent_id if interface == PHONE else None

        async def notify(user_id: int, message: dict[str, Any]) -> None:
            await self.told.put({**message, "to": user_id})

        return WrapUpService(self.db, self.agents, self.pbx, seconds_for, resolve, notify)

    async def next(self, kind: str) -> dict[str, Any]:
        while True:
            message = await asyncio.wait_for(self.told.get(), 10)
            if message["type"] == kind:
                return message

    async def call(self, linkedid: str = "L1") -> int:
        row = Call(
            server="pbx", linkedid=linkedid, direction="inbound", agent_id=self.agent_id,
            agent_interface=PHONE, queue="hotline", answered_at=datetime.now(UTC),
        )  # fmt: skip
        async with self.db.transaction() as session:
            session.add(row)
        return row.id

    async def complete(self, linkedid: str = "L1", ago: float = 0.0) -> dict[str, Any]:
        at = time.time() - ago
        self.service.on_agent_completed(
            AgentCompleted("pbx", linkedid, PHONE, "zhang", "hotline", at)
        )
        return await self.next("wrapup")

    async def row(self, call_id: int) -> Call:
        async with self.db.transaction() as session:
            found = await session.get(Call, call_id)
        assert found is not None
        return found


@pytest.fixture
async def world(db: Database) -> AsyncIterator[World]:
    agent = await create_user(
        db, {"username": "zhang", "display_name": "张三", "phone_interface": PHONE}
    )
    made = World(db, agent.id, seconds=30)
    await made.service.start()
    yield made
    await made.service.stop()


async def test_the_agent_is_in_wrap_up_for_the_queues_time(world: World) -> None:
    call_id = await world.call()
    told = await world.complete()
    assert told["to"] == world.agent_id and told["call_id"] == call_id
    assert 29 < told["seconds_left"] <= 30 and told["can_extend"] and not told["extended"]
    (member,) = world.agents.all()
    assert member.state == "wrapup" and member.as_dict()["wrapup_until"] == told["until"]
    row = await world.row(call_id)
    assert row.wrapup_until is not None and row.wrapup_extended is False
    assert row.wrapup_seconds is None
    assert world.pbx.actions == []  # Asterisk's wrapuptime does the blocking, not a pause


async def test_it_ends_on_time_and_records_how_long_it_took(world: World) -> None:
    world.seconds = 1
    call_id = await world.call()
    await world.complete(ago=0.5)  # half a second of it already gone
    ended = await world.next("wrapup.ended")
    assert ended["call_id"] == call_id and ended["wrapup_seconds"] == pytest.approx(1, abs=0.1)
    assert (await world.row(call_id)).wrapup_seconds == pytest.approx(1, abs=0.1)
    assert world.agents.all()[0].state == "available"
    assert world.service.for_agent(world.agent_id) is None


async def test_the_one_extension_pauses_the_phone_until_it_ends(world: World) -> None:
    world.seconds = 2
    call_id = await world.call()
    first = await world.complete(ago=1.0)
    with pytest.raises(NotYourWrapUp):
        await world.service.extend(world.agent_id + 1, "pbx", "L1")
    extended = await world.service.extend(world.agent_id, "pbx", "L1")
    assert extended.until == pytest.approx(first["until"] + 2)
    assert world.pbx.pauses() == [("true", WRAPUP_REASON)]
    assert world.agents.all()[0].state == "wrapup"  # paused for wrap-up is not a break
    with pytest.raises(AlreadyExtended):
        await world.service.extend(world.agent_id, "pbx", "L1")
    row = await world.row(call_id)
    assert row.wrapup_extended is True
    assert row.wrapup_until is not None
    assert row.wrapup_until.timestamp() == pytest.approx(extended.until, abs=0.01)
    ended = await world.next("wrapup.ended")
    assert ended["wrapup_seconds"] == pytest.approx(4, abs=0.1)
    assert world.pbx.pauses() == [("true", WRAPUP_REASON), ("false", "")]
    with pytest.raises(WrapUpOver):
        await world.service.extend(world.agent_id, "pbx", "L1")


async def test_a_break_taken_meanwhile_is_not_undone(world: World) -> None:
    world.seconds = 1
    await world.call()
    await world.complete(ago=0.5)
    await world.service.extend(world.agent_id, "pbx", "L1")
    pause(world.agents, True, "午饭")  # the agent chose a meal break from the desktop
    await world.next("wrapup.ended")
    assert world.pbx.pauses() == [("true", WRAPUP_REASON)]
    assert world.agents.all()[0].state == "paused"


async def test_saving_the_disposition_finishes_it_early(world: World) -> None:
    call_id = await world.call()
    await world.complete(ago=3.0)
    await world.service.extend(world.agent_id, "pbx", "L1")
    seconds = await world.service.finish_call("pbx", "L1")
    assert seconds == pytest.approx(3, abs=0.5)
    ended = await world.next("wrapup.ended")
    assert ended["call_id"] == call_id
    assert (await world.row(call_id)).wrapup_seconds == pytest.approx(3, abs=0.5)
    assert world.pbx.pauses()[-1] == ("false", "")
    assert await world.service.finish_call("pbx", "L1") is None


async def test_a_new_call_ends_the_previous_wrap_up(world: World) -> None:
    first = await world.call("L1")
    second = await world.call("L2")
    await world.complete("L1", ago=5.0)
    await world.complete("L2")
    assert (await world.row(first)).wrapup_seconds == pytest.approx(5, abs=0.5)
    assert world.service.for_agent(world.agent_id).call_id == second  # type: ignore[union-attr]


async def test_a_restart_picks_up_the_wrap_up_and_releases_its_pause(world: World) -> None:
    world.seconds = 1
    call_id = await world.call()
    await world.complete(ago=0.2)
    await world.service.extend(world.agent_id, "pbx", "L1")
    await world.service.stop()  # the server goes down with the phone paused for wrap-up

    world.service = world.build()
    await world.service.start()
    again = world.service.for_agent(world.agent_id)
    assert again is not None and again.extended and again.call_id == call_id
    await world.service.reconcile("pbx")  # the AMI resync: the wrap-up still owns the pause
    assert world.pbx.pauses() == [("true", WRAPUP_REASON)]
    await world.next("wrapup.ended")
    assert world.pbx.pauses()[-1] == ("false", "")
    assert (await world.row(call_id)).wrapup_seconds == pytest.approx(2, abs=0.3)


async def test_a_resync_releases_a_wrap_up_pause_nobody_owns(world: World) -> None:
    pause(world.agents, True, WRAPUP_REASON)  # e.g. the unpause failed while AMI was down
    await world.service.reconcile("pbx")
    assert world.pbx.pauses() == [("false", "")]
    pause(world.agents, True, "培训")
    await world.service.reconcile("pbx")
    assert world.pbx.pauses() == [("false", "")]  # a training pause is the agent's own


async def test_no_wrap_up_time_means_no_wrap_up(world: World) -> None:
    world.seconds = 0
    await world.call()
    world.service.on_agent_completed(AgentCompleted("pbx", "L1", PHONE, "zhang", "hotline", 0))
    await asyncio.gather(*world.service._jobs)
    assert world.service.active == {} and world.told.empty()


def test_the_tracker_reports_when_the_agent_left_the_call() -> None:
    emitted: list[object] = []
    tracker = CallTracker(emitted.append)
    for event in load("answered_queue_call"):
        tracker.handle("pbx1", event)
    (done,) = [e for e in emitted if isinstance(e, AgentCompleted)]
    assert done.interface == "PJSIP/1001" and done.queue == "hotline" and done.at > 0
