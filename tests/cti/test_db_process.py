"""The CTI database worker process: work sent to it is written in order by another process,
a worker that dies is replaced without losing what was sent meanwhile, and a worker that
cannot start says why."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import struct
import time
from collections.abc import Callable

import pytest
from sqlalchemy import select

from crm_core.customers import CustomerService
from crm_core.db import Database
from crm_core.settings import Settings
from cti.call_events import CallStarted, Direction
from cti.db_process import DbProcess, WorkerFailed
from cti.models import Call
from cti.worker_channel import ChannelClosed, encode, read_message


def started(linkedid: str, caller: str = "13905581234") -> CallStarted:
    return CallStarted(
        server="pbx1", linkedid=linkedid, direction=Direction.INBOUND, caller=caller,
        caller_name="", did="4008001234", at=time.time(), request_id=None,
    )  # fmt: skip


async def nothing(_event: object) -> None:
    return None


async def until(condition: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def logged(db: Database) -> list[str]:
    async with db.transaction() as session:
        return list((await session.scalars(select(Call.linkedid).order_by(Call.id))).all())


async def test_calls_are_logged_and_360s_built_by_another_process(db: Database) -> None:
    customer = await CustomerService(db).create(
        {"name": "阜阳顺达物流", "code": "C1"}, ["13905581234"]
    )
    worker = DbProcess(db.settings, nothing)
    await worker.start()
    try:
        assert worker.pid is not None and worker.pid != os.getpid()
        for number in range(5):
            worker.send("log", started(f"170000000{number}.1"))
        snapshot = await worker.call("build", "13905581234", None)
        assert snapshot["match"] == "customer"
        assert snapshot["customer_360"]["customer"]["id"] == customer.id
        await worker.call("drain")
        assert await logged(db) == [f"170000000{number}.1" for number in range(5)]
    finally:
        await worker.stop()
    with pytest.raises(WorkerFailed, match="stopped"):
        await worker.call("drain")


async def test_a_killed_worker_is_replaced_and_work_sent_meanwhile_is_written(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    worker = DbProcess(db.settings, nothing)
    await worker.start()
    try:
        worker.send("log", started("1700000001.1"))
        await worker.call("drain")
        first = worker.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        await until(lambda: worker._writer is None)  # the serving side has noticed
        worker.send("log", started("1700000002.1"))  # while no worker runs
        await until(lambda: worker.restarts == 1)
        assert worker.pid not in (None, first)
        await worker.call("drain")
        assert await logged(db) == ["1700000001.1", "1700000002.1"]
    finally:
        await worker.stop()
    assert "ALERT CTI database worker died" in caplog.text


async def test_a_worker_that_cannot_open_its_database_says_why(settings: Settings) -> None:
    broken = dataclasses.replace(
        settings, database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none"
    )
    worker = DbProcess(broken, nothing)
    with pytest.raises(WorkerFailed, match="did not start"):
        await worker.start()
    assert worker.pid is None


async def test_a_torn_or_foreign_message_closes_the_channel_instead_of_crashing() -> None:
    for wire in (
        struct.pack("!I", 5) + b"\x80\x05junk",  # not a pickle
        struct.pack("!I", 2) + b"ab",  # not a pickle either
        struct.pack("!I", 1 << 30),  # a length no message has
        struct.pack("!I", 100) + b"short",  # cut off
        encode(("ready",))[:3],  # a header cut in half
    ):
        reader = asyncio.StreamReader()
        reader.feed_data(wire)
        reader.feed_eof()
        with pytest.raises(ChannelClosed):
            await read_message(reader)
    reader = asyncio.StreamReader()
    reader.feed_data(encode(("result", 1, True, {"match": "unknown"})))
    assert await read_message(reader) == ("result", 1, True, {"match": "unknown"})
