"""The cluster's building blocks against a real PostgreSQL (issue #19): the lease and its
takeover, fencing by epoch, LISTEN/NOTIFY fan-out (inline and by id, in order), and the
settings that refuse a cluster on SQLite. Two nodes' live behaviour with the PBX is in
tests/pbx/test_cluster_live.py."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from crm_core import migrate
from crm_core.cluster.fanout import INLINE_LIMIT, Fanout
from crm_core.cluster.fence import LOST, Fence, FencedOut
from crm_core.cluster.lease import Lease
from crm_core.cluster.runtime import SingleNode, cluster_for
from crm_core.settings import Settings, SettingsError

DATABASE = "test_cluster_unit"
URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{DATABASE}"
ADDRESS = f"postgresql://postgres@127.0.0.1:5432/{DATABASE}"
pytestmark = pytest.mark.skipif(
    os.environ.get("HOTLINE_TEST_DATABASE_URL", "sqlite") == "sqlite",
    reason="a cluster needs PostgreSQL: runs in the PostgreSQL pass",
)


@pytest.fixture(scope="module")
def database() -> Iterator[None]:
    for sql in (f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)", f"CREATE DATABASE {DATABASE}"):
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-q", "-c", sql],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    migrate.upgrade(Settings(database_url=URL))
    yield


class Events:
    """A lease holder's callbacks, recorded."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.changed = asyncio.Event()

    async def acquired(self, epoch: int) -> None:
        self.log.append(f"acquired {epoch}")
        self.changed.set()

    async def lost(self) -> None:
        self.log.append("lost")
        self.changed.set()

    async def next(self) -> str:
        async with asyncio.timeout(15):
            while not self.changed.is_set():
                await self.changed.wait()
        self.changed.clear()
        return self.log[-1]


async def _run(lease: Lease) -> asyncio.Task[None]:
    return asyncio.create_task(lease.run())


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.mark.usefixtures("database")
async def test_one_holder_at_a_time_and_the_other_takes_over_when_it_goes() -> None:
    one, two = Events(), Events()
    first = Lease(ADDRESS, "ami:unit", "node-1", one.acquired, one.lost, interval=0.2)
    second = Lease(ADDRESS, "ami:unit", "node-2", two.acquired, two.lost, interval=0.2)
    running_first = await _run(first)
    assert await one.next() == "acquired 1"
    running_second = await _run(second)
    await asyncio.sleep(1.0)  # five of its tries
    assert two.log == [] and first.held and not second.held
    await _stop(running_first)  # a holder that stops (or dies) lets go
    assert one.log[-1] == "lost"
    assert await two.next() == "acquired 2"  # the epoch goes up at every takeover
    await _stop(running_second)


@pytest.mark.usefixtures("database")
async def test_a_holder_whose_session_is_cut_stops_at_once_and_comes_back_later() -> None:
    events = Events()
    lease = Lease(ADDRESS, "ami:cut", "node-1", events.acquired, events.lost, interval=0.2)
    running = await _run(lease)
    first = await events.next()
    conn = await asyncpg.connect(ADDRESS)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            "hotline node-1 lease ami:cut",
        )
    finally:
        await conn.close()
    assert await events.next() == "lost"
    again = await events.next()  # a new session, a new epoch
    assert int(again.split()[1]) > int(first.split()[1])
    await _stop(running)


@pytest.mark.usefixtures("database")
async def test_fencing_refuses_writes_under_an_epoch_that_is_no_longer_current() -> None:
    engine = create_async_engine(URL)
    events = Events()
    lease = Lease(ADDRESS, "ami:fence", "node-1", events.acquired, events.lost, interval=0.2)
    running = await _run(lease)
    try:
        epoch = int((await events.next()).split()[1])
        fence = Fence()
        fence.set({"ami:fence": epoch})
        async with engine.begin() as conn:
            await fence.check(conn, {"ami:fence"})  # current: allowed
        # Another node takes over: the epoch goes up behind this writer's back.
        conn2 = await asyncpg.connect(ADDRESS)
        try:
            await conn2.execute(
                "UPDATE cluster_leases SET epoch = epoch + 1, holder = 'node-2'"
                " WHERE name = 'ami:fence'"
            )
        finally:
            await conn2.close()
        with pytest.raises(FencedOut, match="no longer leads ami:fence"):
            async with engine.begin() as conn:
                await fence.check(conn, {"ami:fence"})
        fence.set({"ami:fence": LOST})  # a lease lost: refused without asking
        with pytest.raises(FencedOut):
            async with engine.begin() as conn:
                await fence.check(conn, {"ami:fence"})
        async with engine.begin() as conn:
            await fence.check(conn, {"ami:other"})  # a lease never held: not fenced
    finally:
        await _stop(running)
        await engine.dispose()


@pytest.fixture
async def two_nodes(database: None) -> AsyncIterator[tuple[Fanout, Fanout]]:
    one, two = Fanout(ADDRESS, "node-1"), Fanout(ADDRESS, "node-2")
    tasks = [asyncio.create_task(one.run()), asyncio.create_task(two.run())]
    async with asyncio.timeout(10):
        await one.listening.wait()
        await two.listening.wait()
    yield one, two
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_fanout_delivers_to_the_other_nodes_in_order_big_ones_by_id(
    two_nodes: tuple[Fanout, Fanout],
) -> None:
    one, two = two_nodes
    got_one: list[str] = []
    got_two: list[str] = []
    done = asyncio.Event()

    async def on_two(body: object) -> None:
        got_two.append(str(body))
        if len(got_two) == 3:
            done.set()

    async def on_one(body: object) -> None:
        got_one.append(str(body))

    two.handlers["note"], one.handlers["note"] = on_two, on_one
    big = "客" * INLINE_LIMIT  # 3 bytes each in UTF-8: far over a NOTIFY payload
    for body in ("first", big, "last"):
        one.publish("note", body)
    async with asyncio.timeout(10):
        await done.wait()
    assert got_two == ["first", big, "last"]  # the big one did not overtake or get lost
    await asyncio.sleep(0.3)
    assert got_one == []  # a node does not hear itself


def test_a_node_name_needs_postgresql_and_a_plain_name() -> None:
    with pytest.raises(ValueError, match="SQLite"):
        cluster_for(Settings(node_name="node-1"), "http://x/")
    with pytest.raises(SettingsError, match="node name"):
        Settings().replace(node_name="node one; drop")
    assert isinstance(cluster_for(Settings(), "http://x/"), SingleNode)


def test_cluster_status_on_sqlite_says_what_to_do() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env["DATABASE_URL"] = "sqlite+aiosqlite:///./var/unused.db"
    shown = subprocess.run(
        [sys.executable, "-m", "agent_desktop.cli", "cluster", "status"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert shown.returncode == 2
    assert "a cluster needs PostgreSQL" in shown.stdout


@pytest.mark.usefixtures("database")
def test_cluster_status_with_no_node_says_so_and_fails() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env["DATABASE_URL"] = URL
    shown = subprocess.run(
        [sys.executable, "-m", "agent_desktop.cli", "cluster", "status"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert shown.returncode == 1, shown.stdout + shown.stderr
    assert "no node has started with a node name" in shown.stdout
