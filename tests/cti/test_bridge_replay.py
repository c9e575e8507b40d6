"""Real transcripts through the whole bridge: tracker, pops routed per agent, call log rows."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from ami_replay import load
from sqlalchemy import select

from crm_core.customers import CustomerService
from crm_core.db import Database
from crm_core.events import CallRecordingFinished, EventBus
from crm_core.users import create_user
from cti.ami_link import QUEUE_STATUS_ITEMS
from cti.ami_types import ResyncSnapshot
from cti.bridge import CtiBridge
from cti.models import Call, ScreenPop


class RecordingSink:
    """Stands in for the WebSocket hub's routing table: who was sent what."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, dict[str, Any]]] = []

    async def send_to_user(self, user_id: int, message: dict[str, Any] | str) -> int:
        self.sent.append((user_id, json.loads(message) if isinstance(message, str) else message))
        return 1

    def to(self, user_id: int) -> list[dict[str, Any]]:
        return [m for u, m in self.sent if u == user_id]


@pytest.fixture
async def world(db: Database) -> dict[str, Any]:
    zhang = await create_user(
        db, {"username": "zhang", "display_name": "张三", "phone_interface": "PJSIP/1001"}
    )
    li = await create_user(
        db, {"username": "li", "display_name": "李四", "phone_interface": "PJSIP/1002"}
    )
    await create_user(
        db, {"username": "wang", "display_name": "王五", "phone_interface": "PJSIP/1003"}
    )
    customer = await CustomerService(db).create(
        {"name": "阜阳顺达物流有限公司", "code": "C1"}, ["13905581234"]
    )
    sink = RecordingSink()
    bus = EventBus()
    finished: list[CallRecordingFinished] = []
    bus.subscribe(CallRecordingFinished, finished.append)
    bridge = CtiBridge(db, bus, sink)
    await bridge.start()
    yield {
        "bridge": bridge,
        "sink": sink,
        "zhang": zhang.id,
        "li": li.id,
        "finished": finished,
        "customer": customer.id,
    }
    await bridge.stop()


async def play(world: dict[str, Any], name: str) -> None:
    bridge: CtiBridge = world["bridge"]
    for event in load(name):
        bridge.handle_replay("pbx1", event)
        await bridge.dispatch_pending()
        if event.name == "QueueCallerJoin":
            # On the PBX seconds pass between entry and ring (greeting, IVR): the 360 is
            # built in that time. A replay has no such gap, so let the build finish.
            await asyncio.gather(*(c.task for c in bridge.pops.calls.values()))
    await bridge.drain()


async def calls(db: Database) -> list[Call]:
    async with db.transaction() as session:
        return list((await session.scalars(select(Call).order_by(Call.id))).all())


async def test_answered_call_pops_the_ringing_agent_only(
    db: Database, world: dict[str, Any]
) -> None:
    await play(world, "answered_queue_call")
    sink: RecordingSink = world["sink"]
    assert {u for u, _ in sink.sent} == {world["zhang"]}
    pop = sink.to(world["zhang"])[0]
    assert pop["v"] == 1 and pop["type"] == "pop" and pop["pop"]["state"] == "ringing"
    assert pop["pop"]["match"] == "customer"
    assert pop["pop"]["customer_360"]["customer"]["name"] == "阜阳顺达物流有限公司"
    assert [m.get("state") for m in sink.to(world["zhang"])[1:]] == ["connected", "ended"]
    (call,) = await calls(db)
    assert (call.direction, call.outcome, call.status) == ("inbound", "answered", "ended")
    assert (call.customer_id, call.agent_id, call.queue) == (
        world["customer"],
        world["zhang"],
        "hotline",
    )
    assert call.recording_path and call.recording_path.endswith(".wav")
    assert call.answered_at and call.ended_at and call.talk_seconds and call.talk_seconds > 0
    # Waiting counts from queue entry (6.5 s after the call entered: greeting + IVR).
    assert call.queued_at is not None and call.wait_seconds is not None
    assert 0 < call.wait_seconds < 3
    (done,) = world["finished"]
    assert (done.call_id, done.path, done.agent_id) == (
        call.id,
        call.recording_path,
        world["zhang"],
    )


async def test_ringall_withdraws_the_loser(db: Database, world: dict[str, Any]) -> None:
    await play(world, "ringall_two_agents_one_answers")
    sink: RecordingSink = world["sink"]
    states = {
        u: [m["pop"]["state"] if m["type"] == "pop" else m["state"] for m in sink.to(u)]
        for u in (world["zhang"], world["li"])
    }
    assert sorted(states.values()) == [["ringing", "connected", "ended"], ["ringing", "withdrawn"]]
    async with db.transaction() as session:
        pops = (await session.scalars(select(ScreenPop))).all()
    assert sorted(p.state for p in pops) == ["ended", "withdrawn"]


async def test_abandoned_and_missed_calls_are_logged(db: Database, world: dict[str, Any]) -> None:
    await play(world, "caller_abandons_in_queue")
    (call,) = await calls(db)
    assert (call.outcome, call.agent_id, call.answered_at) == ("abandoned", None, None)
    assert call.wait_seconds is not None and call.wait_seconds > 0


async def test_replaying_twice_makes_no_second_row(db: Database, world: dict[str, Any]) -> None:
    await play(world, "answered_queue_call")
    world["bridge"].tracker.calls.clear()  # a restarted bridge that sees the events again
    await play(world, "answered_queue_call")
    assert len(await calls(db)) == 1


async def test_click_to_dial_is_logged_outbound(db: Database, world: dict[str, Any]) -> None:
    await play(world, "click_to_dial_originate")
    (call,) = await calls(db)
    assert (call.direction, call.number, call.outcome) == ("outbound", "13905581234", "answered")
    assert (call.customer_id, call.agent_id) == (world["customer"], world["zhang"])


async def test_receipts_are_stored(db: Database, world: dict[str, Any]) -> None:
    await play(world, "answered_queue_call")
    pop_id = world["sink"].to(world["zhang"])[0]["pop"]["id"]
    bridge: CtiBridge = world["bridge"]
    assert bridge.pops.receipt(world["zhang"], pop_id, "delivered")
    assert not bridge.pops.receipt(world["li"], pop_id, "delivered")  # not theirs
    assert not bridge.pops.receipt(world["zhang"], pop_id, "eaten")
    await bridge.drain()
    async with db.transaction() as session:
        pop = await session.get(ScreenPop, pop_id)
    assert pop is not None and pop.delivered_at is not None and pop.displayed_at is None


async def test_stop_waits_for_the_360s_in_flight(db: Database, world: dict[str, Any]) -> None:
    # A call that never queued (click-to-dial) leaves its 360 building when the call log is
    # done. stop() must let it finish: a build still holding a pooled connection when the
    # engine is disposed hands it back to a discarded pool, and that aiosqlite connection is
    # never closed (it surfaced as a ResourceWarning in whatever test the GC ran in).
    bridge: CtiBridge = world["bridge"]
    for event in load("click_to_dial_originate"):
        bridge.handle_replay("pbx1", event)
    await bridge.dispatch_pending()
    builds = [t for t in asyncio.all_tasks() if t.get_name().startswith("pop-360-")]
    assert builds and not any(t.done() for t in builds)
    await bridge.stop()
    assert all(t.done() and not t.cancelled() for t in builds)
    assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_call_begun_while_the_link_was_down_is_adopted_at_resync(
    world: dict[str, Any], db: Database
) -> None:
    """Captured off the real PBX: our link logs in while agent 1001's phone already rings
    for a call it never saw begin; the resync snapshot comes first, then the live events."""
    bridge: CtiBridge = world["bridge"]
    events = load("call_begun_while_disconnected")
    taken = [e for e in events if e.name in ("CoreShowChannel", *QUEUE_STATUS_ITEMS)]
    live = [e for e in events if e not in taken]
    variables = {"MIXMONITOR_FILENAME": "/srv/hotline/x/spool/monitor/in-1796352014.0.wav"}
    asked: list[tuple[str, str]] = []

    async def channel_variables(server: str, channel: str, names: Any) -> dict[str, str]:
        asked.append((server, channel))
        return variables

    bridge.channel_variables = channel_variables
    channels = tuple(e for e in taken if e.name == "CoreShowChannel")
    queues = tuple(e for e in taken if e.name in QUEUE_STATUS_ITEMS)
    snapshot = ResyncSnapshot("pbx1", 2, channels, queues, 0, outage_ns=12_000_000_000)  # type: ignore[arg-type]
    await bridge.on_resync("pbx1", snapshot)
    await asyncio.gather(*(c.task for c in bridge.pops.calls.values()))
    assert asked == [("pbx1", "PJSIP/carrier-00000000")]
    # A second reconnect while the same phone still rings: no second pop.
    await bridge.on_resync("pbx1", snapshot)
    for event in live:
        bridge.handle_replay("pbx1", event)
        await bridge.dispatch_pending()
    await bridge.drain()

    pops = [m for m in world["sink"].to(world["zhang"]) if m.get("type") == "pop"]
    # One pop (sent again once its 360 is ready: the same pop id).
    assert len({m["pop"]["id"] for m in pops}) == 1 and pops[0]["pop"]["caller"] == "13905581234"
    assert world["sink"].to(world["li"]) == []
    (call,) = await calls(db)
    assert (call.linkedid, call.outcome, call.queue) == ("1796352014.0", "answered", "hotline")
    assert call.agent_id == world["zhang"] and call.customer_id == world["customer"]
    assert call.recording_path == variables["MIXMONITOR_FILENAME"]
    assert call.queued_at is not None and call.talk_seconds
