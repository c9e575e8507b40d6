"""Screen-pop latency: from the AgentCalled bytes on the AMI socket to the pop on the agent's
WebSocket, through the real `hotline serve`, with N agents connected and a big CRM.

    python bench/pop_latency.py --customers 1000000 --agents 200 --rates 1,10,50

The bench plays Asterisk: a loopback AMI server the real server's AMI client logs into,
writing real-shaped event sequences for calls from seeded customers' numbers. Agent browsers
are WebSocket clients logged in through /api/login. In the same run a bare relay (TCP line →
the right agent's WebSocket, no logic; bench/bare_relay.py, a process of its own like the
server) gives the floor. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import websockets
from sqlalchemy import select

from agent_desktop import schema
from crm_core import migrate
from crm_core.db import Database
from crm_core.models import PhoneNumber, User
from crm_core.seed import seed_customers
from crm_core.settings import Settings, env_name
from crm_core.users import create_user

ENTRY_TO_RING = 1.0  # seconds
PENDING: set[str] = set()  # pops that went out before their 360 was built
PASSWORD = "bench-password-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float]) -> str:
    if not values:
        return "no samples"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered):7.2f} ms   p99 {p99:7.2f} ms   (n={len(values)})"


# -- the database -----------------------------------------------------------------------------
async def prepare_db(path: Path, customers: int, agents: int) -> list[str]:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{path}")
    fresh = not path.exists()
    await asyncio.to_thread(migrate.upgrade, settings)
    db = Database.open(settings)
    try:
        if fresh:
            print(f"seeding {customers:,} customers (once; reused next run) ...", flush=True)
            result = await seed_customers(db, customers, seed=1)
            print(f"  {result.seconds:.0f} s", flush=True)
        async with db.connect() as conn:
            have = set((await conn.execute(select(User.username))).scalars())
            numbers = list(
                (
                    await conn.execute(
                        select(PhoneNumber.e164).where(PhoneNumber.kind == "mobile").limit(5000)
                    )
                ).scalars()
            )
        for n in range(agents):
            if f"bench{n}" not in have:
                await create_user(
                    db,
                    {
                        "username": f"bench{n}",
                        "display_name": f"坐席{n}",
                        "phone_interface": f"PJSIP/{3000 + n}",
                    },
                    PASSWORD,
                )
    finally:
        await db.close()
    return [n.removeprefix("+86") for n in numbers]


# -- Asterisk's side of AMI ------------------------------------------------------------------
def frame(**headers: str) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()


class FakeAsterisk:
    def __init__(self) -> None:
        self.writer: asyncio.StreamWriter | None = None
        self.ready = asyncio.Event()
        self.seq = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        buffer = b""
        try:
            while data := await reader.read(65536):
                buffer += data
                while b"\r\n\r\n" in buffer:
                    raw, buffer = buffer.split(b"\r\n\r\n", 1)
                    action = dict(
                        line.split(": ", 1) for line in raw.decode().split("\r\n") if ": " in line
                    )
                    self.reply(writer, action)
                await writer.drain()
        except asyncio.CancelledError:
            # Cancelled at exit. Not re-raised: this is the connection's top-level task,
            # and asyncio's stream callback would print a cancelled one as an error.
            return

    def reply(self, writer: asyncio.StreamWriter, action: dict[str, str]) -> None:
        name, action_id = action.get("Action", "").lower(), action.get("ActionID", "")
        if name == "login":
            writer.write(
                frame(Response="Success", ActionID=action_id, Message="Authentication accepted")
            )
            writer.write(frame(Event="FullyBooted", Privilege="system,all", Status="Fully Booted"))
            self.writer = writer
            self.ready.set()
        elif name in ("coreshowchannels", "queuestatus"):
            done = (
                "CoreShowChannelsComplete" if name == "coreshowchannels" else "QueueStatusComplete"
            )
            writer.write(
                frame(
                    Response="Success",
                    ActionID=action_id,
                    EventList="start",
                    Message="list will follow",
                )
            )
            writer.write(frame(Event=done, ActionID=action_id, EventList="Complete", ListItems="0"))
        elif name == "ping":
            writer.write(frame(Response="Success", ActionID=action_id, Ping="Pong"))
        else:
            writer.write(frame(Response="Success", ActionID=action_id))

    def enter(self, caller: str, agent: int) -> tuple[str, dict[str, str]]:
        """Write a call's entry (Newchannel, QueueCallerJoin); return what ring() needs."""
        assert self.writer is not None
        self.seq += 1
        linkedid = f"{int(time.time())}.{self.seq}"
        base = {
            "Channel": f"PJSIP/carrier-{self.seq:08x}",
            "CallerIDNum": caller,
            "CallerIDName": caller,
            "Uniqueid": linkedid,
            "Linkedid": linkedid,
            "Timestamp": f"{time.time():.6f}",
        }
        w = self.writer
        w.write(frame(Event="Newchannel", Context="from-carrier", Exten="4008001234", **base))
        w.write(
            frame(
                Event="QueueCallerJoin",
                Context="hotline-queue",
                Queue="hotline",
                Position="1",
                Count="1",
                **base,
            )
        )
        ring = {
            **base,
            "DestUniqueid": f"{linkedid}1",
            "Queue": "hotline",
            "Interface": f"PJSIP/{3000 + agent}",
            "MemberName": f"bench{agent}",
        }
        return linkedid, ring

    def ring(self, linkedid: str, headers: dict[str, str], sent: dict[str, float]) -> None:
        assert self.writer is not None
        self.writer.write(frame(Event="AgentCalled", **headers))
        sent[linkedid] = time.perf_counter()

    def hangup(self, linkedid: str) -> None:
        assert self.writer is not None
        self.writer.write(
            frame(
                Event="Hangup",
                Channel="PJSIP/carrier-x",
                Uniqueid=linkedid,
                Linkedid=linkedid,
                Cause="16",
                Timestamp=f"{time.time():.6f}",
            )
        )


# -- agents' browsers --------------------------------------------------------------------------
def wait_healthy(base: str, seconds: float = 60) -> None:
    # The AMI login can come before the HTTP listener is up: wait for /healthz as well.
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def login(base: str, username: str) -> str:
    request = urllib.request.Request(
        f"{base}/api/login",
        method="POST",
        data=json.dumps({"username": username, "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json", "Origin": base},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        cookie: str = response.headers["Set-Cookie"].split(";", 1)[0]
    return cookie


async def agent_socket(url: str, headers: dict[str, str], received: dict[str, float]) -> None:
    async with websockets.connect(url, additional_headers=headers, max_queue=None) as ws:
        async for raw in ws:
            now = time.perf_counter()
            message = json.loads(raw)
            if message.get("type") == "pop":
                received.setdefault(message["pop"]["linkedid"], now)
                if message["pop"].get("match") == "pending":
                    PENDING.add(message["pop"]["linkedid"])


async def run_rate(
    fake: FakeAsterisk,
    rate: float,
    seconds: float,
    agents: int,
    callers: list[str],
    received: dict[str, float],
) -> list[float]:
    sent: dict[str, float] = {}
    rng = random.Random(rate)
    started = time.perf_counter()
    rings: list[asyncio.Task[None]] = []

    async def one_call(caller: str, agent: int) -> None:
        linkedid, ring = fake.enter(caller, agent)
        # On a PBX the welcome prompt and the IVR take seconds before any agent rings; the
        # 360 is built in that time. One second here is a conservative stand-in.
        await asyncio.sleep(ENTRY_TO_RING)
        fake.ring(linkedid, ring, sent)

    for i in range(int(rate * seconds)):
        rings.append(asyncio.create_task(one_call(rng.choice(callers), rng.randrange(agents))))
        await asyncio.sleep(max(0.0, started + (i + 1) / rate - time.perf_counter()))
    await asyncio.gather(*rings)
    await asyncio.sleep(2.0)
    for linkedid in sent:
        fake.hangup(linkedid)
    return [(received[k] - v) * 1000 for k, v in sent.items() if k in received]


# -- the bare relay floor ---------------------------------------------------------------------
async def bare_relay(rate: float, seconds: float, agents: int) -> list[float]:
    """The same clients and the same two process hops as the pop, minus everything we do."""
    port, tcp_port = free_port(), free_port()
    relay = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("bare_relay.py")), str(tcp_port), str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert relay.stdout is not None
        if await asyncio.to_thread(relay.stdout.readline) != "ready\n":
            raise RuntimeError("bare relay did not start")
        received: dict[str, float] = {}
        readers = [
            asyncio.create_task(agent_socket(f"ws://127.0.0.1:{port}/ws?agent={n}", {}, received))
            for n in range(agents)
        ]
        await asyncio.sleep(2.0)  # as for the pops: every agent connected before the first
        _, writer = await asyncio.open_connection("127.0.0.1", tcp_port)
        sent: dict[str, float] = {}
        rng = random.Random(7)
        started = time.perf_counter()
        for i in range(int(rate * seconds)):
            key = f"bare{rate}-{i}"
            payload = json.dumps({"type": "pop", "pop": {"linkedid": key}})
            writer.write(f"{rng.randrange(agents)} {payload}\n".encode())
            sent[key] = time.perf_counter()
            await asyncio.sleep(max(0.0, started + (i + 1) / rate - time.perf_counter()))
        await asyncio.sleep(1.0)
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        writer.close()
    finally:
        relay.terminate()
        relay.wait(timeout=10)
    return [(received[k] - v) * 1000 for k, v in sent.items() if k in received]


async def main(args: argparse.Namespace) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    schema.prepare()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    db_path = workdir / f"pop-{args.customers}.db"
    callers = await prepare_db(db_path, args.customers, args.agents)

    fake = FakeAsterisk()
    ami_port = free_port()
    ami = await asyncio.start_server(fake.handle, "127.0.0.1", ami_port)
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{db_path.resolve()}",
        http_port=free_port(),
        ami_port=ami_port,
        fastagi_port=free_port(),
    )
    env = {
        **os.environ,
        **{
            env_name(k): str(getattr(settings, k))
            for k in ("database_url", "http_port", "ami_port", "fastagi_port")
        },
    }
    log = (workdir / "pop-server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "agent_desktop.cli", "serve"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{settings.http_port}"
        await asyncio.wait_for(fake.ready.wait(), 60)
        await asyncio.to_thread(wait_healthy, base)
        print(f"server up; logging in {args.agents} agents ...", flush=True)
        cookies = [await asyncio.to_thread(login, base, f"bench{n}") for n in range(args.agents)]
        received: dict[str, float] = {}
        url = base.replace("http", "ws") + "/ws"
        readers = [
            asyncio.create_task(agent_socket(url, {"Cookie": c, "Origin": base}, received))
            for c in cookies
        ]
        await asyncio.sleep(2.0)
        # The bench is the measuring instrument: its own full collections (300k objects, tens
        # of ms) would land on pops and relay alike as noise. The server freezes its own.
        gc.collect()
        gc.freeze()
        print(f"\n{args.agents} agents connected, {args.customers:,} customers")
        for rate in [float(r) for r in args.rates.split(",")]:
            pops = await run_rate(fake, rate, args.seconds, args.agents, callers, received)
            floor = await bare_relay(rate, args.seconds, args.agents)
            print(f"{rate:5.0f} calls/s  pop:  {pct(pops)}, {len(PENDING)} sent as pending")
            PENDING.clear()
            print(f"{'':13} bare: {pct(floor)}")
            if pops and floor:
                ratio = (
                    statistics.quantiles(pops, n=100)[98] / statistics.quantiles(floor, n=100)[98]
                )
                print(f"{'':13} p99 pop / p99 bare = {ratio:.1f}x")
        for task in readers:
            task.cancel()
        # Collected, so asyncio.run does not report the cancelled readers at exit.
        await asyncio.gather(*readers, return_exceptions=True)
    finally:
        server.terminate()
        server.wait(timeout=20)
        ami.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--rates", default="1,10,50")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workdir", default="var/bench")
    asyncio.run(main(parser.parse_args()))
