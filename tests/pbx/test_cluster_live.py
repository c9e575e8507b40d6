"""Two `hotline serve` nodes on one PostgreSQL, the real PBX and SIPp (issue #19).

This module runs its own Asterisk instance ("pytest-cluster", ports +14000) and its own
PostgreSQL database (`test_cluster`), so it can run beside the PostgreSQL pass, which uses
the `test` database. Agent 1001's desktop is on node 1, agent 1002's on node 2.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from live_server import AgentBrowser, LiveServer, live_server, pops
from pbx_crm import demo_crm
from pbx_harness import PbxUnderTest, Sipp, pbx_test_settings, place_call, start_phone

import crm_core.cluster.pg as cluster_pg

pytestmark = [pytest.mark.pbx]
DATABASE = "test_cluster"
PG = f"postgresql://postgres@127.0.0.1:5432/{DATABASE}"
URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{DATABASE}"
AGENTS = [
    {"username": f"agent{n}", "display_name": f"坐席{n}", "phone_interface": f"PJSIP/{n}"}
    for n in (1001, 1002)
]
INSTANCE = "pytest-cluster"
LEASE = f"ami:{INSTANCE}"


def _psql(sql: str) -> None:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-q", "-c", sql],
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def cluster_pbx(
    pbx_provisioned: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PbxUnderTest]:
    instance = PbxUnderTest(pbx_test_settings(INSTANCE, 14000), tmp_path_factory.mktemp("c"))
    instance.write_agents(AGENTS)
    instance.stop()
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def users() -> dict[str, int]:
    _psql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    _psql(f"CREATE DATABASE {DATABASE}")

    async def make() -> dict[str, int]:
        async with demo_crm(Path("unused"), url=URL) as crm:
            return dict(crm["users"])

    return asyncio.run(make())


class Nodes:
    """The two nodes, each a real `hotline serve` process; a killed one can be started
    again (it comes back as a follower)."""

    def __init__(self, pbx: PbxUnderTest, workdir: Path) -> None:
        self.pbx = pbx
        self.workdir = workdir
        self.servers: dict[str, LiveServer] = {}
        self._stacks: dict[str, ExitStack] = {}

    def start(self, name: str) -> LiveServer:
        stack = ExitStack()
        workdir = self.workdir / f"{name}-{time.monotonic_ns()}"
        workdir.mkdir()
        server = stack.enter_context(live_server(self.pbx, URL, workdir, node_name=name))
        self.servers[name], self._stacks[name] = server, stack
        return server

    def kill(self, name: str) -> None:
        process = self.servers[name].process
        process.kill()  # kill -9: no goodbye, no lock released by the process
        process.wait()
        self._stacks.pop(name).close()

    def close(self) -> None:
        for stack in self._stacks.values():
            stack.close()


def health(server: LiveServer) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"{server.base}/healthz", timeout=3) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body
    except OSError:
        return {"status": "unreachable"}


def wait_role(server: LiveServer, role: str, timeout: float = 30) -> float:
    """Seconds until the node reports `role` (the load balancer's view of it)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if health(server).get("role") == role:
            return time.monotonic() - began
        time.sleep(0.1)
    raise AssertionError(f"{server.settings.node_name} never became {role}: {health(server)}")


@pytest.fixture(scope="module")
def nodes(
    cluster_pbx: PbxUnderTest, users: dict[str, int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Nodes]:
    running = Nodes(cluster_pbx, tmp_path_factory.mktemp("nodes"))
    try:
        wait_role(running.start("node-1"), "leader")
        wait_role(running.start("node-2"), "follower")
        yield running
    finally:
        running.close()


@pytest.fixture
def cleared(cluster_pbx: PbxUnderTest) -> Iterator[None]:
    yield
    if cluster_pbx.channels():
        cluster_pbx.cli("channel request hangup all")


@asynccontextmanager
async def desktops(*pairs: tuple[LiveServer, str]) -> AsyncIterator[list[AgentBrowser]]:
    opened = [AgentBrowser(server, name) for server, name in pairs]
    try:
        for browser in opened:
            await browser.connect()
            await browser.wait_for(lambda m: m.get("type") == "hello")
        yield opened
    finally:
        for browser in opened:
            await browser.close()


def ready_pop(message: dict[str, Any]) -> bool:
    return message.get("type") == "pop" and message["pop"].get("match") != "pending"


def update(state: str, pop_id: str | None = None) -> Any:
    return lambda m: (
        m.get("type") == "pop.update"
        and m.get("state") == state
        and (pop_id is None or m.get("pop_id") == pop_id)
    )


async def fetch(sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(PG)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def ended_call(linkedid: str, timeout: float = 60) -> list[asyncpg.Record]:
    deadline = time.monotonic() + timeout
    while True:
        rows = await fetch("SELECT * FROM calls WHERE linkedid = $1", linkedid)
        if (rows and all(r["status"] == "ended" for r in rows)) or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.3)


def pop_ids(browser: AgentBrowser) -> set[str]:
    return {m["pop"]["id"] for m in pops(browser.messages)}


def no_message_twice(browser: AgentBrowser) -> bool:
    seen = [json.dumps({k: v for k, v in m.items() if k != "_at"}) for m in browser.messages]
    return len(seen) == len(set(seen))


@pytest.mark.usefixtures("cleared")
async def test_a_queue_call_pops_once_on_the_desktop_connected_to_the_other_node(
    nodes: Nodes, cluster_pbx: PbxUnderTest, users: dict[str, int], sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:  # fmt: skip
    one, two = nodes.servers["node-1"], nodes.servers["node-2"]
    assert health(one)["role"] == "leader" and health(two)["role"] == "follower"
    sipp_processes.append(start_phone(cluster_pbx, "1001", None, tmp_path))
    sipp_processes.append(start_phone(cluster_pbx, "1002", 3000, tmp_path))
    async with desktops((one, "agent1001"), (two, "agent1002")) as (a, b):
        sipp_processes.append(place_call(cluster_pbx, tmp_path, hold_ms=30000))
        pop = await b.wait_for(ready_pop)
        assert pop["pop"]["customer_360"]["customer"]["name"] == "阜阳顺达物流有限公司"
        # The receipt goes from node 2 to the leader, which holds the pop.
        ack = {"v": 1, "type": "ack", "pop_id": pop["pop"]["id"], "stage": "delivered"}
        await b.ws.send(json.dumps(ack))
        await b.wait_for(update("connected", pop["pop"]["id"]))
        await b.wait_for(update("ended", pop["pop"]["id"]))
        await a.wait_for(update("withdrawn"))  # ring-all: 1001 rang too, on node 1
    assert pop_ids(b) == {pop["pop"]["id"]} and no_message_twice(b)
    assert [m["state"] for m in b.messages if m.get("type") == "pop.update"] == [
        "connected",
        "ended",
    ]
    (call,) = await ended_call(pop["pop"]["linkedid"])
    assert call["agent_id"] == users["agent1002"] and call["outcome"] == "answered"
    (row,) = await fetch("SELECT delivered_at FROM screen_pops WHERE id = $1", pop["pop"]["id"])
    assert row["delivered_at"] is not None


@pytest.mark.usefixtures("cleared")
async def test_a_desktop_that_moves_to_the_other_node_gets_its_pop_back_and_its_updates(
    nodes: Nodes, cluster_pbx: PbxUnderTest, users: dict[str, int], sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:  # fmt: skip
    leader = next(s for s in nodes.servers.values() if health(s).get("role") == "leader")
    follower = next(s for s in nodes.servers.values() if s is not leader)
    sipp_processes.append(start_phone(cluster_pbx, "1002", 4000, tmp_path))
    async with desktops((leader, "agent1002")) as (first,):
        sipp_processes.append(place_call(cluster_pbx, tmp_path, hold_ms=30000))
        pop = await first.wait_for(ready_pop)
    # The tab closed while the phone rings; the browser reconnects through the balancer,
    # which sends it to the other node.
    async with desktops((follower, "agent1002")) as (moved,):
        (hello,) = [m for m in moved.messages if m.get("type") == "hello"]
        assert [p["id"] for p in hello["pops"]] == [pop["pop"]["id"]]
        assert hello["pops"][0]["customer_360"]["customer"]["name"] == "阜阳顺达物流有限公司"
        ack = {"v": 1, "type": "ack", "pop_id": pop["pop"]["id"], "stage": "displayed"}
        await moved.ws.send(json.dumps(ack))
        await moved.wait_for(update("connected", pop["pop"]["id"]))
        await moved.wait_for(update("ended", pop["pop"]["id"]), timeout=60)
    (row,) = await fetch("SELECT displayed_at FROM screen_pops WHERE id = $1", pop["pop"]["id"])
    assert row["displayed_at"] is not None


def test_a_login_on_one_node_is_valid_on_the_other(nodes: Nodes) -> None:
    one, two = nodes.servers["node-1"], nodes.servers["node-2"]
    session = one.login("supervisor")
    assert "agents" in two.get_json("/api/wallboard", session)
    # A write with the CSRF token that came with a login on node 1, sent to node 2, which
    # passes it to Asterisk on its actions-only AMI link.
    agent = one.login("agent1001")
    assert two.post("/api/agent/pause", agent, {"paused": False})["paused"] is False


def test_the_wallboard_on_the_follower_shows_the_leaders_agents_and_every_desktop(
    nodes: Nodes,
) -> None:
    follower = next(s for s in nodes.servers.values() if health(s).get("role") == "follower")

    async def watch() -> list[dict[str, Any]]:
        pairs = ((nodes.servers["node-1"], "agent1001"), (nodes.servers["node-2"], "agent1002"))
        async with desktops(*pairs):
            session = await asyncio.to_thread(follower.login, "supervisor")
            deadline = time.monotonic() + 30
            while True:
                board = await asyncio.to_thread(follower.get_json, "/api/wallboard", session)
                where = {a["member_name"]: a["desktop"] for a in board["agents"]}
                if (where.get("agent1001"), where.get("agent1002")) == (["node-1"], ["node-2"]):
                    return list(board["agents"])
                assert time.monotonic() < deadline, board
                await asyncio.sleep(0.5)

    agents = asyncio.run(watch())
    # The queue members come from the leader's AMI link: the follower has none of its own.
    assert {a["queue"] for a in agents} >= {"hotline"}
    assert all(a["state"] in ("available", "unavailable", "paused") for a in agents)


async def _talking(
    nodes: Nodes, pbx: PbxUnderTest, sipps: list[Sipp], workdir: Path, hold_ms: int
) -> tuple[AgentBrowser, dict[str, Any]]:
    """A call answered by agent 1002, whose desktop is on node 2 (the caller of this keeps
    the browser open and closes it)."""
    sipps.append(start_phone(pbx, "1002", 2000, workdir))
    browser = AgentBrowser(nodes.servers["node-2"], "agent1002")
    await browser.connect()
    await browser.wait_for(lambda m: m.get("type") == "hello")
    sipps.append(place_call(pbx, workdir, hold_ms=hold_ms))
    pop = await browser.wait_for(ready_pop)
    await browser.wait_for(update("connected", pop["pop"]["id"]))
    return browser, pop


async def _one_clean_call(linkedid: str, agent: int, at_least_s: float) -> None:
    rows = await ended_call(linkedid, timeout=90)
    assert len(rows) == 1, rows
    (call,) = rows
    assert call["status"] == "ended" and call["outcome"] == "answered"
    assert call["agent_id"] == agent
    assert call["talk_seconds"] >= at_least_s
    assert call["recording_path"]
    deadline = time.monotonic() + 60
    while not await fetch("SELECT id FROM recordings WHERE call_id = $1", call["id"]):
        assert time.monotonic() < deadline, "the recording was never indexed"
        await asyncio.sleep(0.5)


@pytest.mark.usefixtures("cleared")
async def test_kill_9_of_the_leader_mid_call_hands_the_call_to_the_other_node(
    nodes: Nodes, cluster_pbx: PbxUnderTest, users: dict[str, int], sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:  # fmt: skip
    leader = next(n for n, s in nodes.servers.items() if health(s).get("role") == "leader")
    other = next(n for n in nodes.servers if n != leader)
    browser, pop = await _talking(nodes, cluster_pbx, sipp_processes, tmp_path, 45000)
    try:
        nodes.kill(leader)
        took = wait_role(nodes.servers[other], "leader")
        print(f"failover after kill -9: {took:.2f} s")  # the figure; bench/cluster.py times it
        # The new leader took the pop over: the end goes to the same pop, nothing re-pops.
        await browser.wait_for(update("ended", pop["pop"]["id"]), timeout=60)
        assert pop_ids(browser) == {pop["pop"]["id"]} and no_message_twice(browser)
    finally:
        await browser.close()
    await _one_clean_call(pop["pop"]["linkedid"], users["agent1002"], 10)
    wait_role(nodes.start(leader), "follower")


@pytest.mark.usefixtures("cleared")
async def test_a_leader_cut_from_the_database_stops_leading_and_the_call_survives(
    nodes: Nodes, cluster_pbx: PbxUnderTest, users: dict[str, int], sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:  # fmt: skip
    leader = next(n for n, s in nodes.servers.items() if health(s).get("role") == "leader")
    other = next(n for n in nodes.servers if n != leader)
    (before,) = await fetch("SELECT epoch FROM cluster_leases WHERE name = $1", LEASE)
    browser, pop = await _talking(nodes, cluster_pbx, sipp_processes, tmp_path, 45000)
    try:
        # The leader's lease session is cut (as by a network fault); its process lives on.
        await fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            f"hotline {leader} lease {LEASE}",
        )
        wait_role(nodes.servers[other], "leader")
        wait_role(nodes.servers[leader], "follower")  # it noticed and stood down
        await browser.wait_for(update("ended", pop["pop"]["id"]), timeout=60)
        assert pop_ids(browser) == {pop["pop"]["id"]} and no_message_twice(browser)
    finally:
        await browser.close()
    (after,) = await fetch("SELECT epoch, holder FROM cluster_leases WHERE name = $1", LEASE)
    assert after["epoch"] > before["epoch"] and after["holder"] == other
    await _one_clean_call(pop["pop"]["linkedid"], users["agent1002"], 10)


@pytest.mark.usefixtures("cleared")
async def test_a_call_that_rings_while_nobody_leads_is_popped_after_the_takeover(
    nodes: Nodes, cluster_pbx: PbxUnderTest, users: dict[str, int], sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:  # fmt: skip
    leader = next(n for n, s in nodes.servers.items() if health(s).get("role") == "leader")
    other = next(n for n in nodes.servers if n != leader)
    sipp_processes.append(start_phone(cluster_pbx, "1002", 6000, tmp_path))
    # The takeover gap, held open: the test queues for the lease's lock while the leader
    # lives (PostgreSQL grants it to a waiter first when the holder dies; a node only ever
    # tries), so nobody leads until the test lets go.
    gate = await asyncpg.connect(PG)
    try:
        queued = asyncio.create_task(
            gate.execute("SELECT pg_advisory_lock($1)", cluster_pg.lock_key(LEASE))
        )
        while not await fetch(  # noqa: ASYNC110 (a lock request shows up only there)
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ):
            await asyncio.sleep(0.05)
        nodes.kill(leader)
        await queued
        async with desktops((nodes.servers[other], "agent1002")) as (b,):
            sipp_processes.append(place_call(cluster_pbx, tmp_path, hold_ms=45000))
            deadline = time.monotonic() + 60
            while not any("PJSIP/1002-" in c for c in cluster_pbx.channels()):
                assert time.monotonic() < deadline, cluster_pbx.cli("core show channels")
                await asyncio.sleep(0.2)
            assert pops(b.messages) == []  # ringing, and nobody leads
            await gate.close()  # the gap ends
            pop = await b.wait_for(lambda m: m.get("type") == "pop", timeout=30)
            await b.wait_for(update("ended", pop["pop"]["id"]), timeout=60)
    finally:
        if not gate.is_closed():
            await gate.close()
    rows = await ended_call(pop["pop"]["linkedid"])
    assert len(rows) == 1 and rows[0]["agent_id"] == users["agent1002"]
    wait_role(nodes.start(leader), "follower")


@pytest.mark.usefixtures("cleared")
async def test_after_every_database_session_is_cut_the_nodes_come_back_and_pop_again(
    nodes: Nodes, cluster_pbx: PbxUnderTest, users: dict[str, int], sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:  # fmt: skip
    # What clients see of a PostgreSQL restart: every session ends at once. (A real restart
    # would also stop the PostgreSQL pass that runs beside this module; bench/cluster.py
    # restarts the server itself.)
    await fetch(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = $1 AND pid <> pg_backend_pid()",
        DATABASE,
    )
    deadline = time.monotonic() + 30
    while sorted(health(s).get("role", "") for s in nodes.servers.values()) != [
        "follower",
        "leader",
    ]:
        assert time.monotonic() < deadline, [health(s) for s in nodes.servers.values()]
        await asyncio.sleep(0.2)
    sipp_processes.append(start_phone(cluster_pbx, "1002", 2000, tmp_path))
    async with desktops((nodes.servers["node-2"], "agent1002")) as (b,):
        sipp_processes.append(place_call(cluster_pbx, tmp_path, hold_ms=30000))
        pop = await b.wait_for(ready_pop)
        await b.wait_for(update("ended", pop["pop"]["id"]), timeout=60)
    assert pop_ids(b) == {pop["pop"]["id"]}
    (call,) = await ended_call(pop["pop"]["linkedid"])
    assert call["agent_id"] == users["agent1002"]


def test_cluster_status_names_the_leader_and_the_lock_holder(nodes: Nodes) -> None:
    leader = next(n for n, s in nodes.servers.items() if health(s).get("role") == "leader")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env["DATABASE_URL"] = URL
    shown = subprocess.run(
        [sys.executable, "-m", "agent_desktop.cli", "cluster", "status", "--json"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr + shown.stdout
    status = json.loads(shown.stdout)
    lease = next(x for x in status["leases"] if x["name"] == LEASE)
    assert lease["holder"] == leader
    assert lease["lock_session"] == f"hotline {leader} lease {LEASE}"
    up = {n["name"] for n in status["nodes"] if n["up"]}
    assert {"node-1", "node-2"} <= up
