"""Cluster benchmark (issue #19): pop latency on one node, then on the same node as the AMI
leader and across nodes in a two-node cluster, and the failover time over repeated kills.

    .venv/bin/python bench/cluster.py            # 1M customers, 2,000 agents, 20 calls/s,
                                                 # 60 s per phase, 10 kills
    .venv/bin/python bench/cluster.py --quick    # 20k customers, 200 agents, 10 s, 3 kills

Needs a local PostgreSQL reachable as `postgres@127.0.0.1` (no password). The bench uses a
database of its own, `bench_cluster` (1M customers) or `bench_cluster_<N>` (`--customers N`),
created with `createdb` and seeded on the first run, reused afterwards when it holds the
right number of customers (the seeding time is printed and kept in var/bench/). On the
2-CPU development machine seeding 1M customers took 184 s and a full run then about 4 min;
`--quick` takes about a minute. Node logs go to var/bench/cluster-<node>-<start>.log.

It plays Asterisk as bench/pop_latency.py does (its loopback AMI server, agents as WebSocket
clients logged in through /api/login), with one difference: the fake AMI server takes every
node's login, and only a login with `Events: on` (the leader's) gets events; an `Events: off`
login (a follower's, actions only) gets answers to its actions and nothing else.

1. Single node: one `hotline serve` (no node name) on the database; every agent connected to
   it; `--rate` calls/s for `--seconds`: pop p50/p99, from the AgentCalled bytes written to
   the AMI socket to the pop on the agent's WebSocket.
2. Cluster: `hotline serve --node-name node-1` and `node-2`; once /healthz shows exactly one
   leader, half the agents connect to each node; same load. p50/p99 separately for agents on
   the leader's node (same-node) and on the other one (cross-node: LISTEN/NOTIFY relay).
3. Failover, `--kills` times: SIGKILL the leader; time until the other node's /healthz says
   leader (polled every 50 ms), and until its AMI login with `Events: on` reaches the fake
   AMI server; the killed node is started again as a follower before the next round, and
   the next kill comes 1-3 s (random) later, at any point of the lease's 1 s poll cycle.

Figures only; nothing is asserted. The bench's agent users get a cheap argon2 hash (one pass,
1 MiB) so that 2,000 logins do not take minutes: login is not what is measured. The bench
runs on the same machine as the nodes and PostgreSQL, so its figures include its own CPU
use; on a 2-CPU machine they are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import random
import resource
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import websockets
from argon2 import PasswordHasher
from pop_latency import (
    ENTRY_TO_RING,
    PASSWORD,
    PENDING,
    FakeAsterisk,
    frame,
    free_port,
    login,
    pct,
    wait_healthy,
)
from sqlalchemy import func, select, update

from agent_desktop import schema
from crm_core import migrate
from crm_core.db import Database
from crm_core.models import Customer, PhoneNumber, User
from crm_core.seed import seed_customers
from crm_core.settings import Settings, env_name
from crm_core.users import create_user

PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/{}"
POLL = 0.05  # seconds between /healthz polls while timing a failover


# -- the database -----------------------------------------------------------------------------
def pg_tool(*command: str) -> int:
    """Run a PostgreSQL client tool (psql, createdb) as postgres@127.0.0.1."""
    done = subprocess.run(
        [*command[:1], "-h", "127.0.0.1", "-U", "postgres", *command[1:]],
        capture_output=True,
        check=False,
    )
    return done.returncode


async def prepare_db(name: str, customers: int, agents: int, workdir: Path) -> list[str]:
    """A database of the bench's own with `customers` customers and `agents` agent users
    (bench0 ...) with phones; returns callers' numbers."""
    settings = Settings(database_url=PG.format(name))
    exists = await asyncio.to_thread(pg_tool, "psql", "-d", name, "-qAtc", "SELECT 1")
    have = 0
    if exists == 0:
        await asyncio.to_thread(migrate.upgrade, settings)
        db = Database.open(settings)
        try:
            async with db.connect() as conn:
                have = (await conn.execute(select(func.count()).select_from(Customer))).scalar_one()
        finally:
            await db.close()
    note = workdir / f"{name}.seeded"
    if have == customers:
        took = note.read_text().strip() if note.exists() else "unknown"
        print(f"database {name}: {have:,} customers already (seeding took {took})", flush=True)
    else:
        if exists == 0:
            drop = f"DROP DATABASE {name} WITH (FORCE)"
            await asyncio.to_thread(pg_tool, "psql", "-d", "postgres", "-qAtc", drop)
        if await asyncio.to_thread(pg_tool, "createdb", name):
            raise RuntimeError(f"createdb {name} failed")
        await asyncio.to_thread(migrate.upgrade, settings)
        print(f"seeding {customers:,} customers into {name} ...", flush=True)
        db = Database.open(settings)
        try:
            result = await seed_customers(db, customers, seed=1)
        finally:
            await db.close()
        note.write_text(f"{result.seconds:.0f} s\n")
        print(f"  seeding took {result.seconds:.0f} s", flush=True)

    db = Database.open(settings)
    try:
        async with db.connect() as conn:
            users = set((await conn.execute(select(User.username))).scalars())
            numbers = list(
                (
                    await conn.execute(
                        select(PhoneNumber.e164).where(PhoneNumber.kind == "mobile").limit(5000)
                    )
                ).scalars()
            )
        missing = [n for n in range(agents) if f"bench{n}" not in users]
        for n in missing:
            await create_user(
                db,
                {
                    "username": f"bench{n}",
                    "display_name": f"坐席{n}",
                    "phone_interface": f"PJSIP/{3000 + n}",
                },
            )
        if missing:
            cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
            async with db.connect() as conn:
                await conn.execute(
                    update(User).where(User.username.like("bench%")).values(password_hash=cheap)
                )
                await conn.commit()
            print(f"  {len(missing)} agent users created", flush=True)
    finally:
        await db.close()
    return [n.removeprefix("+86") for n in numbers]


# -- Asterisk's side of AMI, for several nodes --------------------------------------------------
class ClusterAsterisk(FakeAsterisk):
    """pop_latency's fake, taking any number of logins: events go to the one connection
    that logged in with `Events: on`; `Events: off` logins get answers only."""

    def __init__(self) -> None:
        super().__init__()
        self.events_on: list[float] = []  # perf_counter of each Events: on login
        self.events_off: list[float] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await super().handle(reader, writer)
        except ConnectionError:
            pass  # the node went away (killed or stopped) while we wrote to it
        finally:
            if self.writer is writer:
                self.writer = None

    def reply(self, writer: asyncio.StreamWriter, action: dict[str, str]) -> None:
        name, action_id = action.get("Action", "").lower(), action.get("ActionID", "")
        events = action.get("Events", "on").lower() != "off"
        if name == "login" and not events:
            writer.write(
                frame(Response="Success", ActionID=action_id, Message="Authentication accepted")
            )
            self.events_off.append(time.perf_counter())
        elif name == "login":
            self.events_on.append(time.perf_counter())
            super().reply(writer, action)
        else:
            super().reply(writer, action)


# -- nodes ------------------------------------------------------------------------------------
class Node:
    def __init__(self, name: str | None, url: str, ami_port: int, workdir: Path) -> None:
        self.name, self.url, self.ami_port, self.workdir = name, url, ami_port, workdir
        self.http_port = free_port()
        self.base = f"http://127.0.0.1:{self.http_port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
        env[env_name("database_url")] = self.url
        env[env_name("http_port")] = str(self.http_port)
        env[env_name("ami_port")] = str(self.ami_port)
        env[env_name("fastagi_port")] = str(free_port())
        command = [sys.executable, "-m", "agent_desktop.cli", "serve"]
        if self.name:
            command += ["--node-name", self.name]
        self.starts += 1
        log = (self.workdir / f"cluster-{self.name or 'single'}-{self.starts}.log").open("w")
        self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)

    def health(self) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(f"{self.base}/healthz", timeout=1) as response:
                body: dict[str, Any] = json.loads(response.read())
                return body
        except (OSError, ValueError):
            return {"status": "unreachable"}

    def role(self) -> str | None:
        return self.health().get("role")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_role(node: Node, role: str, timeout: float = 90) -> float:
    began = time.perf_counter()
    while node.role() != role:
        if time.perf_counter() - began > timeout:
            raise RuntimeError(f"{node.name} never became {role}: {node.health()}")
        time.sleep(POLL)
    return time.perf_counter() - began


# -- agents and calls -------------------------------------------------------------------------
def login_all(base: str, agents: range) -> dict[int, str]:
    with ThreadPoolExecutor(8) as pool:
        cookies = pool.map(lambda n: login(base, f"bench{n}"), agents)
        return dict(zip(agents, cookies, strict=True))


async def agent_tab(
    url: str, headers: dict[str, str], received: dict[str, float], greeted: list[int]
) -> None:
    """pop_latency.agent_socket, also counting the server's hello (the tab is registered)."""
    async with websockets.connect(url, additional_headers=headers, max_queue=None) as ws:
        async for raw in ws:
            now = time.perf_counter()
            message = json.loads(raw)
            if message.get("type") == "pop":
                received.setdefault(message["pop"]["linkedid"], now)
                if message["pop"].get("match") == "pending":
                    PENDING.add(message["pop"]["linkedid"])
            elif message.get("type") == "hello":
                greeted[0] += 1


async def connect(
    placement: dict[int, Node], cookies: dict[int, str], received: dict[str, float]
) -> list[asyncio.Task[None]]:
    """Every agent's tab on its node; returns once each got its hello (or after 60 s)."""
    greeted = [0]
    readers = []
    for n, node in placement.items():
        url = node.base.replace("http", "ws") + "/ws"
        headers = {"Cookie": cookies[n], "Origin": node.base}
        readers.append(asyncio.create_task(agent_tab(url, headers, received, greeted)))
    deadline = time.perf_counter() + 60
    while greeted[0] < len(readers) and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    failed = [t for t in readers if t.done()]
    if failed or greeted[0] < len(readers):
        print(f"  {greeted[0]} of {len(readers)} tabs greeted, {len(failed)} closed early")
    return readers


async def disconnect(readers: list[asyncio.Task[None]]) -> None:
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)


async def calls(
    fake: ClusterAsterisk,
    rate: float,
    seconds: float,
    agents: int,
    callers: list[str],
    received: dict[str, float],
) -> tuple[dict[int, list[float]], int]:
    """pop_latency.run_rate, keeping which agent each pop went to: (latencies by agent,
    calls placed)."""
    sent: dict[str, float] = {}
    target: dict[str, int] = {}
    rng = random.Random(int(rate * 1000) + agents)
    started = time.perf_counter()
    rings: list[asyncio.Task[None]] = []

    async def one_call(caller: str, agent: int) -> None:
        linkedid, ring = fake.enter(caller, agent)
        target[linkedid] = agent
        await asyncio.sleep(ENTRY_TO_RING)
        fake.ring(linkedid, ring, sent)

    for i in range(int(rate * seconds)):
        rings.append(asyncio.create_task(one_call(rng.choice(callers), rng.randrange(agents))))
        await asyncio.sleep(max(0.0, started + (i + 1) / rate - time.perf_counter()))
    await asyncio.gather(*rings)
    await asyncio.sleep(2.0)
    for linkedid in sent:
        fake.hangup(linkedid)
    await asyncio.sleep(1.0)
    by_agent: dict[int, list[float]] = {}
    for linkedid, at in sent.items():
        if linkedid in received:
            by_agent.setdefault(target[linkedid], []).append((received[linkedid] - at) * 1000)
    missing = [(target[k], at - started) for k, at in sent.items() if k not in received]
    if missing:
        shown = ", ".join(f"bench{a} at {t:.1f} s" for a, t in missing[:10])
        print(f"  {len(missing)} pops never arrived: {shown}", flush=True)
    return by_agent, len(sent)


def summary(values: list[float]) -> str:
    return f"min {min(values):6.2f} s   median {statistics.median(values):6.2f} s   " + (
        f"max {max(values):6.2f} s   (n={len(values)})"
    )


# -- the phases -------------------------------------------------------------------------------
async def single_phase(
    args: argparse.Namespace, url: str, cookies: dict[int, str], callers: list[str], workdir: Path
) -> tuple[list[float], int]:
    fake = ClusterAsterisk()
    ami_port = free_port()
    ami = await asyncio.start_server(fake.handle, "127.0.0.1", ami_port)
    node = Node(None, url, ami_port, workdir)
    node.start()
    try:
        await asyncio.wait_for(fake.ready.wait(), 90)
        await asyncio.to_thread(wait_healthy, node.base)
        cookies.update(await asyncio.to_thread(login_all, node.base, range(args.agents)))
        received: dict[str, float] = {}
        readers = await connect(dict.fromkeys(range(args.agents), node), cookies, received)
        gc.collect()
        gc.freeze()
        by_agent, placed = await calls(
            fake, args.rate, args.seconds, args.agents, callers, received
        )
        await disconnect(readers)
        return [x for v in by_agent.values() for x in v], placed
    finally:
        node.stop()
        ami.close()


async def cluster_phases(
    args: argparse.Namespace, url: str, cookies: dict[int, str], callers: list[str], workdir: Path
) -> dict[str, Any]:
    fake = ClusterAsterisk()
    ami_port = free_port()
    ami = await asyncio.start_server(fake.handle, "127.0.0.1", ami_port)
    nodes = [Node(f"node-{i}", url, ami_port, workdir) for i in (1, 2)]
    out: dict[str, Any] = {"logins": (0, 0)}
    try:
        nodes[0].start()
        await asyncio.to_thread(wait_role, nodes[0], "leader")
        nodes[1].start()
        await asyncio.to_thread(wait_role, nodes[1], "follower")
        roles = [n.role() for n in nodes]
        print(f"cluster up: roles {dict(zip([n.name for n in nodes], roles, strict=True))}")
        leader = nodes[roles.index("leader")]
        placement = {n: nodes[n % 2] for n in range(args.agents)}
        received: dict[str, float] = {}
        readers = await connect(placement, cookies, received)
        gc.collect()
        by_agent, placed = await calls(
            fake, args.rate, args.seconds, args.agents, callers, received
        )
        await disconnect(readers)
        out["placed"] = placed
        out["same"] = [x for a, v in by_agent.items() if placement[a] is leader for x in v]
        out["cross"] = [x for a, v in by_agent.items() if placement[a] is not leader for x in v]
        out["leader"] = leader.name

        to_health: list[float] = []
        to_login: list[float] = []
        print(f"failover: {args.kills} kills of the leader ...", flush=True)
        rng = random.Random(19)
        for round_ in range(args.kills):
            # A kill at a random moment of the lease's poll cycle, not right after the
            # restarted node's first try (that would time the worst case every round).
            await asyncio.sleep(rng.uniform(1.0, 3.0))
            roles = [n.role() for n in nodes]
            if roles.count("leader") != 1:
                print(f"  round {round_ + 1}: roles {roles}, waiting ...", flush=True)
                await asyncio.sleep(1.0)
                roles = [n.role() for n in nodes]
                if roles.count("leader") != 1:
                    print("  no single leader; stopping the failover phase")
                    break
            old = nodes[roles.index("leader")]
            new = nodes[1 - roles.index("leader")]
            logins = len(fake.events_on)
            killed_at = time.perf_counter()
            old.kill()
            await asyncio.to_thread(wait_role, new, "leader", 60)
            health_took = time.perf_counter() - killed_at
            deadline = time.perf_counter() + 60
            while len(fake.events_on) == logins and time.perf_counter() < deadline:
                await asyncio.sleep(0.01)
            login_took = (
                fake.events_on[logins] - killed_at if len(fake.events_on) > logins else math.inf
            )
            to_health.append(health_took)
            to_login.append(login_took)
            print(
                f"  kill {round_ + 1:2}: {old.name} killed; {new.name} leader per /healthz after "
                f"{health_took:5.2f} s, AMI Events: on login after {login_took:5.2f} s",
                flush=True,
            )
            old.start()
            await asyncio.to_thread(wait_role, old, "follower", 90)
        out["health"], out["login"] = to_health, to_login
        out["logins"] = (len(fake.events_on), len(fake.events_off))
    finally:
        for node in nodes:
            node.stop()
        ami.close()
    return out


async def main(args: argparse.Namespace) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    schema.prepare()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    name = "bench_cluster" if args.customers == 1_000_000 else f"bench_cluster_{args.customers}"
    url = PG.format(name)
    began = time.perf_counter()
    callers = await prepare_db(name, args.customers, args.agents, workdir)
    print(f"database ready in {time.perf_counter() - began:.0f} s", flush=True)

    cookies: dict[int, str] = {}
    single, single_placed = await single_phase(args, url, cookies, callers, workdir)
    print(f"single node: {pct(single)}", flush=True)
    cluster = await cluster_phases(args, url, cookies, callers, workdir)

    line = "-" * 78
    print(f"\n{line}\ncluster benchmark: {os.cpu_count()} CPUs, {args.customers:,} customers,")
    print(f"{args.agents:,} agents, {args.rate:g} calls/s for {args.seconds:g} s per phase")
    print("(the bench, both nodes and PostgreSQL share the machine: figures are noisy)")
    print(line)
    print(f"single node            {pct(single)}   of {single_placed} calls")
    print(f"cluster, same-node     {pct(cluster['same'])}")
    print(f"cluster, cross-node    {pct(cluster['cross'])}   of {cluster['placed']} calls")
    print(f"pops sent as pending (360 not built yet): {len(PENDING)}")
    logins = cluster["logins"]
    print(f"AMI logins in the cluster phases: {logins[0]} Events: on, {logins[1]} Events: off")
    if cluster.get("health"):
        print(f"failover, /healthz     {summary(cluster['health'])}")
        print(f"failover, AMI login    {summary(cluster['login'])}")
    print(f"{line}\ntarget: cross-node pop p99 <= 25 ms, failover <= 5 s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument(
        "--quick", action="store_true", help="20k customers, 200 agents, 10 s, 3 kills"
    )
    parser.add_argument("--workdir", default="var/bench")
    parsed = parser.parse_args()
    if parsed.quick:
        parsed.customers, parsed.agents, parsed.seconds, parsed.kills = 20_000, 200, 10.0, 3
    asyncio.run(main(parsed))
