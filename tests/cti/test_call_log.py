"""The call log writer: one row per call whatever order or how often its events arrive, with
wait and talk times from the PBX's own timestamps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from crm_core.customers import CustomerService
from crm_core.db import Database
from crm_core.events import CallRecordingFinished
from crm_core.lookup import NumberLookup
from crm_core.users import create_user
from cti.call_events import (
    AgentRinging,
    CallAnswered,
    CallEnded,
    CallIdentified,
    CallQueued,
    CallStarted,
    Direction,
    Outcome,
    RecordingStarted,
)
from cti.call_log import CallLogWriter
from cti.click_to_dial import click_to_dial
from cti.directory import AgentDirectory
from cti.models import Call

T0 = 1_700_000_000.0
CALLER = "13905581234"


class Published:
    def __init__(self) -> None:
        self.events: list[object] = []

    async def publish(self, event: object) -> None:
        self.events.append(event)


@pytest.fixture
async def world(db: Database) -> AsyncIterator[dict[str, Any]]:
    agent = await create_user(
        db, {"username": "zhang", "display_name": "张三", "phone_interface": "PJSIP/1001"}
    )
    customer = await CustomerService(db).create({"name": "顺达物流", "code": "C1"}, [CALLER])
    directory = AgentDirectory(db)
    await directory.reload()
    bus = Published()
    async with NumberLookup(db.settings) as finder:
        writer = CallLogWriter(db, directory, finder, bus)
        yield {"writer": writer, "bus": bus, "agent": agent.id, "customer": customer.id}
        await writer.stop()  # closes the connection it keeps between batches


def queue_call(linkedid: str = "1.1") -> list[object]:
    return [
        CallStarted("pbx", linkedid, Direction.INBOUND, CALLER, "", "4008001234", T0),
        RecordingStarted("pbx", linkedid, f"/spool/{linkedid}.wav", T0 + 0.1),
        CallQueued("pbx", linkedid, "hotline", T0 + 6.5),
        AgentRinging("pbx", linkedid, "r1", "PJSIP/1001", "zhang", "hotline", CALLER, T0 + 7),
        CallAnswered("pbx", linkedid, "r1", "PJSIP/1001", "zhang", "hotline", T0 + 9.25),
        CallEnded("pbx", linkedid, Outcome.ANSWERED, T0 + 70, "Normal", talk_end=T0 + 60),
    ]


async def rows(db: Database) -> list[Call]:
    async with db.transaction() as session:
        return list((await session.scalars(select(Call).order_by(Call.id))).all())


def at(offset: float) -> datetime:
    return datetime.fromtimestamp(T0 + offset, UTC)


def assert_answered_call(call: Call, world: dict[str, Any]) -> None:
    assert (call.status, call.outcome, call.queue) == ("ended", "answered", "hotline")
    assert (call.customer_id, call.agent_id) == (world["customer"], world["agent"])
    assert (call.entered_at, call.queued_at, call.ringing_at) == (at(0), at(6.5), at(7))
    assert (call.answered_at, call.ended_at) == (at(9.25), at(70))
    assert call.wait_seconds == pytest.approx(2.75)  # from queue entry, not from entry
    assert call.talk_seconds == pytest.approx(50.75)  # until the agent left
    assert call.number_e164 == "+8613905581234" and call.recording_path == "/spool/1.1.wav"


@pytest.mark.parametrize("in_one_batch", [True, False])
async def test_a_queue_call_is_one_row_with_its_times(
    db: Database, world: dict[str, Any], in_one_batch: bool
) -> None:
    writer: CallLogWriter = world["writer"]
    if in_one_batch:
        await writer._write_batch(queue_call())
    else:
        for event in queue_call():
            await writer.write(event)
    (call,) = await rows(db)
    assert_answered_call(call, world)
    (done,) = world["bus"].events
    assert isinstance(done, CallRecordingFinished)
    assert (done.call_id, done.path, done.agent_id, done.customer_id) == (
        call.id,
        "/spool/1.1.wav",
        world["agent"],
        world["customer"],
    )
    assert done.answered_at == at(9.25).isoformat() and done.ended_at == at(70).isoformat()
    assert done.talk_seconds == pytest.approx(50.75) and done.queue == "hotline"


async def test_duplicates_and_replays_change_nothing(db: Database, world: dict[str, Any]) -> None:
    writer: CallLogWriter = world["writer"]
    events = queue_call()
    await writer._write_batch(events + events)  # duplicated inside one batch
    later_answer = CallAnswered("pbx", "1.1", "r2", "PJSIP/1002", "li", "vip", T0 + 30)
    later_end = CallEnded("pbx", "1.1", Outcome.MISSED, T0 + 99)
    for event in [*events, later_answer, later_end]:  # replayed one by one, and late ones
        await writer.write(event)
    (call,) = await rows(db)
    assert_answered_call(call, world)
    assert len(world["bus"].events) == 1  # CallEnded counted once


async def test_an_unanswered_call_waits_until_it_ends(db: Database, world: dict[str, Any]) -> None:
    writer: CallLogWriter = world["writer"]
    started, _, queued, ringing, _, _ = queue_call()
    ended = CallEnded("pbx", "1.1", Outcome.ABANDONED, T0 + 20)
    await writer._write_batch([started, queued, ringing, ended])
    (call,) = await rows(db)
    assert (call.outcome, call.answered_at, call.agent_id, call.talk_seconds) == (
        "abandoned",
        None,
        None,
        None,
    )
    assert call.wait_seconds == pytest.approx(13.5)
    assert world["bus"].events == []  # no recording started


async def test_events_before_the_call_started_are_ignored(
    db: Database, world: dict[str, Any]
) -> None:
    writer: CallLogWriter = world["writer"]
    started, *rest = queue_call()
    await writer._write_batch(rest)
    assert await rows(db) == []
    await writer.write(started)
    (call,) = await rows(db)
    assert (call.status, call.answered_at, call.customer_id) == (
        "in_progress",
        None,
        world["customer"],
    )


async def test_a_failing_event_does_not_lose_the_rest_of_its_batch(
    db: Database, world: dict[str, Any]
) -> None:
    writer: CallLogWriter = world["writer"]
    writer.start()
    started = queue_call()[0]
    for event in [started, CallIdentified("pbx", "1.1", 999_999, None, T0 + 1)]:
        writer.submit(event)  # no customer 999999: the batch fails on its foreign key
    writer.submit(queue_call()[2])
    await writer.drain()
    (call,) = await rows(db)
    assert (call.customer_id, call.queue, call.queued_at) == (world["customer"], "hotline", at(6.5))


class Dialled:
    async def originate(self, server: str, **_kwargs: Any) -> object:
        return None


async def test_click_to_dial_row_is_rekeyed_not_doubled(
    db: Database, world: dict[str, Any]
) -> None:
    placed = await click_to_dial(
        db,
        Dialled(),
        server="pbx",
        agent_id=world["agent"],
        interface="PJSIP/1001",
        number=CALLER,
        request_id="click-0001",
        customer_id=None,
    )
    writer: CallLogWriter = world["writer"]
    started = CallStarted(
        "pbx", "9.9", Direction.OUTBOUND, CALLER, "", "", T0, request_id="click-0001"
    )
    answered = CallAnswered("pbx", "9.9", None, "PJSIP/1001", "", None, T0 + 5)
    ended = CallEnded("pbx", "9.9", Outcome.ANSWERED, T0 + 65)
    await writer._write_batch([started, answered])
    await writer.write(started)  # replayed: found by its real key now
    await writer.write(ended)
    (call,) = await rows(db)
    assert (call.id, call.request_id, call.server, call.linkedid) == (
        placed["call_id"],
        "click-0001",
        "pbx",
        "9.9",
    )
    assert (call.direction, call.number, call.customer_id, call.agent_id) == (
        "outbound",
        CALLER,
        world["customer"],
        world["agent"],
    )
    assert (call.entered_at, call.answered_at, call.talk_seconds) == (at(0), at(5), 60.0)
    assert call.wait_seconds == pytest.approx(5.0)


async def test_a_started_call_with_an_unknown_request_is_inserted(
    db: Database, world: dict[str, Any]
) -> None:
    writer: CallLogWriter = world["writer"]
    started = CallStarted("pbx", "9.9", Direction.OUTBOUND, "8001", "", "", T0, "gone-0001")
    await writer.write(started)
    await writer.write(started)
    (call,) = await rows(db)
    assert (call.request_id, call.linkedid, call.status, call.customer_id) == (
        "gone-0001",
        "9.9",
        "in_progress",
        None,
    )
