"""The operations' FastAGI handlers over the real protocol and database: the hours check,
the clock only a test-mode PBX may set, bad arguments, and the callback registration."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from crm_core.db import Database
from crm_core.events import EventBus
from crm_core.models import CallQueue, QueueClosure
from crm_core.settings import Settings
from cti.agi_client import SimulatedChannel, agi_environment, simulate_channel
from cti.agi_handlers import build_agi_server
from cti.fastagi import FastAgiServer
from cti.models import Call, QueueCallback
from cti.operations_agi import OperationsHandlers

LINKEDID = "1795568024.7"
SATURDAY = "2026-12-05T10:00:00+08:00"
MONDAY = "2026-12-07T10:00:00+08:00"


@pytest.fixture
async def server(settings: Settings, db: Database) -> AsyncIterator[FastAgiServer]:
    async with db.transaction() as session:
        await session.execute(
            update(CallQueue).where(CallQueue.name == "hotline").values(hours="mon-fri 09:00-17:00")
        )
        session.add(Call(server="pbx", linkedid=LINKEDID, direction="inbound", number="139"))
    handlers = OperationsHandlers(db, lambda _linkedid: "pbx", test_clock=True)
    agi = build_agi_server(settings, db, EventBus(), port=0, extra_routes=handlers.routes())
    await agi.start()
    yield agi
    await handlers.drain()
    await agi.stop()


async def _call(
    agi: FastAgiServer, script: str, arg: str, caller: str = "13905581234"
) -> SimulatedChannel:
    env = agi_environment(script, callerid=caller, uniqueid=LINKEDID, args=(arg,))
    variables = {"CHANNEL(linkedid)": LINKEDID}
    return await simulate_channel("127.0.0.1", agi.bound_port, env, variables=variables)


async def _routed(db: Database) -> str | None:
    async with db.transaction() as session:
        return await session.scalar(select(Call.routed).where(Call.linkedid == LINKEDID))


async def test_closed_on_a_saturday_says_why_and_when(server: FastAgiServer, db: Database) -> None:
    channel = await _call(server, "hours", f"hotline:{SATURDAY}")
    assert channel.variables["HOTLINE_OPEN"] == "0"
    assert channel.variables["HOTLINE_CLOSED_PROMPT"] == "hotline/closed&hotline/hours-hotline"
    assert await _routed(db) == "closed"


async def test_open_on_a_weekday_and_a_closure_closes_it(
    server: FastAgiServer, db: Database
) -> None:
    assert (await _call(server, "hours", f"hotline:{MONDAY}")).variables["HOTLINE_OPEN"] == "1"
    monday = datetime.fromisoformat(MONDAY).astimezone(UTC)
    async with db.transaction() as session:
        session.add(
            QueueClosure(starts_at=monday - timedelta(hours=1), ends_at=monday + timedelta(hours=1),
                         reason="台风停工")
        )  # fmt: skip
    closed = await _call(server, "hours", f"hotline:{MONDAY}")
    assert closed.variables["HOTLINE_OPEN"] == "0"
    assert closed.variables["HOTLINE_CLOSED_PROMPT"].startswith("hotline/closed-closure")


async def test_an_unknown_queue_or_bad_clock_leaves_the_call_open(server: FastAgiServer) -> None:
    assert "HOTLINE_OPEN" not in (await _call(server, "hours", "nosuch:")).variables
    # A clock that is not a time is ignored (now is used); the call goes on either way.
    assert (await _call(server, "hours", "hotline:yesterday")).variables["HOTLINE_OPEN"] in "01"


async def test_a_production_pbx_cannot_set_the_clock(settings: Settings, db: Database) -> None:
    handlers = OperationsHandlers(db, lambda _linkedid: "pbx", test_clock=False)
    assert handlers._now(SATURDAY) != datetime.fromisoformat(SATURDAY)


async def test_pressing_1_registers_a_callback_keeping_the_join_time(
    server: FastAgiServer, db: Database
) -> None:
    joined = (datetime.now(UTC) - timedelta(seconds=90)).replace(microsecond=0)
    channel = await _call(server, "callback-request", f"hotline:{joined.timestamp():.0f}")
    assert channel.variables["HOTLINE_CALLBACK"] == "ok"
    async with db.transaction() as session:
        job = (await session.scalars(select(QueueCallback))).one()
    assert (job.queue, job.number, job.place_at, job.state) == (
        "hotline", "13905581234", joined, "waiting"
    )  # fmt: skip
    assert await _routed(db) == "callback"


async def test_a_callback_without_a_caller_number_is_refused(
    server: FastAgiServer, db: Database
) -> None:
    channel = await _call(server, "callback-request", "hotline:1", caller="anonymous")
    assert "HOTLINE_CALLBACK" not in channel.variables
    async with db.transaction() as session:
        assert (await session.scalars(select(QueueCallback))).all() == []
