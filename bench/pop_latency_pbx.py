"""Screen-pop latency on the real local Asterisk: AgentCalled on AMI → pop on the agent's WebSocket.

    .venv/bin/python bench/pop_latency_pbx.py [--rate 5] [--seconds 20] [--agents 40]
    .venv/bin/python bench/pop_latency_pbx.py --route sticky   # the owner's phone, no queue

--route sticky: every caller's customer is owned by an agent (round robin), so the dialplan
dials that agent directly (Dial, not Queue) and the ring is the caller leg's DialBegin; its
AMI read is the clock's start instead of AgentCalled's (the same place in the event order).

Needs root and the tools of the real-PBX tests (`hotline pbx install`, sip-tester). Everything
is real: its own Asterisk instance ("bench-pop", ports offset by 23000, so it never meets the
test suite's "pytest" instance or a dev PBX), started by the project's `hotline pbx` commands;
a SIPp carrier placing calls at --rate per second from seeded customers' mobile numbers; one
SIPp phone and one logged-in WebSocket client per agent; the real `hotline serve`.

The calls come from VIP customers' numbers: the FastAGI lookup sends them to the `vip` queue,
which rings one free agent per call (strategy linear). The `hotline` queue rings *every* free
agent for each call, so it cannot take calls faster than one per ring time. The caller keys
a digit that is not on the menu once the menu prompt is playing ("any other key: the
queue"), each phone rings 2 s and answers, and the carrier hangs up 2 s later: calls are
short, so concurrency stays bounded. A warm-up call goes first and is not counted.

Latency is `time.time()` when the pop reaches the agent's WebSocket client minus
`time.time()` when a separate AMI connection (tests/pbx/ami_tap.py, a thread in this
process) read the AgentCalled frame. Both read the same Asterisk event off their own socket
on this host, so the figure includes the server's AMI read, its handling and the WebSocket
hop, and is blurred by the two socket reads: when the tap is the one held up (a loaded
machine), it goes negative. The figure from Asterisk's own event Timestamp, which cannot,
is printed too, with the tap's own lag. Matching is by Linkedid and agent. The CPU each part
used during the run is printed as well: PBX, phones, carrier and server share this machine.

Imports the real-PBX helpers as `tests.pbx.*` (the repository root is put on sys.path; tests/
is a namespace package), so mypy finds them. live_server.py is not reused because it imports
its sibling by bare name, which mypy cannot resolve from here; a small copy of it is below.
Throw-away files (database, logs, SIPp traces, AMI transcript) go to var/bench/pop-pbx/.
Figures only: nothing is asserted beyond "something was measured".
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import csv
import dataclasses
import json
import math
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import wave
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from types import FrameType

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import websockets  # noqa: E402
from sqlalchemy import func, select, update  # noqa: E402
from websockets.asyncio.client import ClientConnection  # noqa: E402

from agent_desktop import schema  # noqa: E402
from asterisk_conf import provision  # noqa: E402
from asterisk_conf.paths import pbx_paths  # noqa: E402
from asterisk_conf.process import read_pid  # noqa: E402
from crm_core import migrate  # noqa: E402
from crm_core.db import Database  # noqa: E402
from crm_core.lookup import NumberLookup  # noqa: E402
from crm_core.models import Customer, PhoneNumber, User  # noqa: E402
from crm_core.seed import seed_customers  # noqa: E402
from crm_core.settings import Settings  # noqa: E402
from crm_core.users import create_user  # noqa: E402
from cti.agi_directory import CustomerDirectory  # noqa: E402
from tests.pbx.ami_tap import AmiTap, Event  # noqa: E402
from tests.pbx.pbx_harness import (  # noqa: E402
    PbxUnderTest,
    Sipp,
    missing_tools,
    pbx_test_settings,
    settings_env,
    start_phone,
)

INSTANCE, OFFSET = "bench-pop", 23000
# SIPp media ports: above this instance's RTP range (29000-29999) and below the kernel's
# ephemeral ports (32768+); the test suite's SIPp start near 27100 and climb by 10 each.
MEDIA_PORT = 31000
PASSWORD = "bench-password-1"
RING_MS = 2000  # agent phones ring this long, then answer
TALK_MS = 2000  # the carrier hangs up about this long after the answer
# The caller keys a digit that is not on the menu ("another key: the queue") once the menu
# prompt has begun, instead of listening through its 12 s: calls are shorter, fewer at once.
MENU_KEY = "0"
# After the welcome prompt has played (a digit during Playback is lost), well inside the menu
# prompt's Read: on a loaded 2-core box a 5.0 s welcome was seen to take 6.5 s.
KEY_MARGIN_MS = 4000
AFTER_KEY_MS = RING_MS + TALK_MS
WRAPUP_S = 2  # queues.conf wrapuptime in test mode: an agent rests this long after a call
SETTLE_S = 3.0  # after the last call: late pops still count
WORKDIR = REPO / "var" / "bench" / "pop-pbx"


class BenchError(Exception):
    """Nothing (more) can be measured; the message says why."""


# -- the CRM ----------------------------------------------------------------------------------
def agent_rows(count: int) -> list[dict[str, str]]:
    """Users and queue members alike; MemberName in AMI is the username."""
    return [
        {
            "username": f"bench{n:03d}",
            "display_name": f"压测坐席{n}",
            "phone_interface": f"PJSIP/{2000 + n}",
        }
        for n in range(count)
    ]


async def prepare_crm(
    path: Path, customers: int, agents: list[dict[str, str]], sticky: bool = False
) -> list[str]:
    """A fresh database with seeded customers and the agents; returns callers' numbers.

    Callers are mobiles that the IVR lookup resolves to exactly one VIP customer with no
    owning agent (an owner is dialled directly, outside the queue: no AgentCalled). With
    `sticky`, each of those customers is then given an owner, agents in turn."""
    settings = Settings(database_url=f"sqlite+aiosqlite:///{path}")
    await asyncio.to_thread(migrate.upgrade, settings)
    db = Database.open(settings)
    try:
        print(f"seeding {customers:,} customers and {len(agents)} agents ...", flush=True)
        await seed_customers(db, customers, seed=1)
        for row in agents:
            await create_user(db, row, PASSWORD)
        async with db.connect() as conn:
            unique_mobiles = (
                select(PhoneNumber.e164)
                .join(Customer, Customer.id == PhoneNumber.customer_id)
                .where(PhoneNumber.kind == "mobile", Customer.vip_level > 0)
                .where(Customer.owner_id.is_(None), Customer.blocked.is_(False))
                .group_by(PhoneNumber.e164)
                .having(func.count(func.distinct(PhoneNumber.customer_id)) == 1)
            )
            numbers = [
                n.removeprefix("+86") for n in (await conn.execute(unique_mobiles)).scalars()
            ]
        if sticky:
            await own_callers(db, numbers, [row["username"] for row in agents])
        # Ask the same code the IVR asks, so no caller is routed differently than assumed.
        async with NumberLookup(settings) as finder:
            directory = CustomerDirectory(db, finder)
            matches = [await directory.by_number(n) for n in numbers]
    finally:
        await db.close()
    return [
        n
        for n, m in zip(numbers, matches, strict=True)
        if m.profile is not None and m.profile.vip and bool(m.profile.owner_interface) == sticky
    ]


async def own_callers(db: Database, numbers: list[str], usernames: list[str]) -> None:
    """Each caller's customer gets an owning agent, agents in turn."""
    async with db.transaction() as session:
        ids = dict((await session.execute(select(User.username, User.id))).all())
        for n, number in enumerate(numbers):
            customer = await session.scalar(
                select(PhoneNumber.customer_id).where(PhoneNumber.e164 == f"+86{number}")
            )
            await session.execute(
                update(Customer)
                .where(Customer.id == customer)
                .values(owner_id=ids[usernames[n % len(usernames)]])
            )


# -- the PBX, the phones and the server -------------------------------------------------------
def start_pbx(workdir: Path, agents: list[dict[str, str]]) -> PbxUnderTest:
    settings = pbx_test_settings(INSTANCE, OFFSET)
    provision.install(pbx_paths(settings), report=lambda message: None)  # no-op when built
    pbx = PbxUnderTest(settings, workdir / "pbx")
    pbx.write_agents(agents)
    pbx.stop()  # a leftover from an interrupted run
    clear_spool(pbx)
    pbx.start()
    return pbx


def clear_spool(pbx: PbxUnderTest) -> None:
    """Empty this instance's recordings spool: the server ingests (transcodes) what it finds
    there when it starts, which would load the machine during the run."""
    spool = pbx.paths.recordings_host
    if spool.is_dir():
        for item in spool.iterdir():
            if item.is_file():
                item.unlink()


def key_at_ms(pbx: PbxUnderTest) -> int:
    """When the caller keys the menu away: once the welcome prompt has played (a digit
    during Playback is lost) and the menu's Read is listening."""
    with wave.open(str(pbx.paths.prompts_host / "welcome.wav"), "rb") as welcome:
        seconds = welcome.getnframes() / welcome.getframerate()
    return int(seconds * 1000) + KEY_MARGIN_MS


def start_carrier(
    pbx: PbxUnderTest, folder: Path, callers: list[str], rate: float, calls: int
) -> tuple[Sipp, Path]:
    """One SIPp placing `calls` calls at `rate`/s, each from the next number in `callers`.

    carrier_call.xml plays audio, waits -d ms, plays one digit, waits 500 ms and hangs up,
    with one fixed caller (-key caller). Rewritten here: the caller comes from an injection
    file ([field0]), and the wait after the digit lasts through ring and talk time."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (REPO / "tests" / "sipp" / "carrier_call.xml").read_text(encoding="utf-8")
    text = text.replace("[caller_name]", "[field1]").replace("[caller]", "[field0]")
    text = text.replace('<pause milliseconds="500"/>', f'<pause milliseconds="{AFTER_KEY_MS}"/>')
    scenario = folder / "carrier_calls.xml"
    scenario.write_text(text, encoding="utf-8")
    (folder / "callers.csv").write_text(
        "SEQUENTIAL\n" + "".join(f"{n};{n};\n" for n in callers), encoding="utf-8"
    )
    stats = folder / "stats.csv"
    s = pbx.settings
    args = [
        f"127.0.0.1:{s.sip_port}", "-s", s.hotline_number, "-p", str(s.carrier_port),
        "-inf", "callers.csv", "-r", f"{rate:g}", "-rp", "1000", "-m", str(calls),
        "-l", "100000", "-d", str(key_at_ms(pbx)), "-trace_stat", "-stf", stats.name, "-fd", "1",
    ]  # fmt: skip
    # Sipp copies SCENARIOS/<scenario> into its folder; an absolute path makes that our own
    # rewritten file (Path joins to an absolute path), copied onto itself.
    return Sipp(folder, str(scenario), args, dtmf=MENU_KEY), stats


def sipp_totals(stats: Path) -> tuple[int, int]:
    """(successful, failed) calls from the last row of SIPp's -trace_stat file."""
    try:
        with stats.open(newline="", encoding="utf-8", errors="replace") as handle:
            rows = list(csv.DictReader(handle, delimiter=";"))
    except OSError:
        return -1, -1
    if not rows:
        return -1, -1
    last = rows[-1]
    return int(last.get("SuccessfulCall(C)") or -1), int(last.get("FailedCall(C)") or -1)


@dataclass
class Server:
    """The real `hotline serve` against the bench PBX (a small copy of tests/pbx/live_server)."""

    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def login(self, username: str) -> str:
        request = urllib.request.Request(
            f"{self.base}/api/login",
            method="POST",
            data=json.dumps({"username": username, "password": PASSWORD}).encode(),
            headers={"Content-Type": "application/json", "Origin": self.base},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            cookie = SimpleCookie(response.headers["Set-Cookie"])
        return "; ".join(f"{k}={v.value}" for k, v in cookie.items())

    def rss_mb(self) -> float | None:
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        kb = next(
            (line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")), None
        )
        return None if kb is None else int(kb) / 1024


@contextmanager
def hotline_serve(pbx: PbxUnderTest, database_url: str, workdir: Path) -> Iterator[Server]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    settings = pbx.settings.replace(database_url=database_url, http_port=port)
    log = workdir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "agent_desktop.cli", "serve"],
            env=settings_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,  # its ./var (recordings, spool) lands in the bench folder
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        wait_healthy(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_healthy(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(f"hotline serve exited; see {server.log}")
        try:
            with urllib.request.urlopen(f"{server.base}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise BenchError(f"hotline serve not healthy in {timeout:.0f} s; see {server.log}")


# -- the AgentCalled clock and the agents' browsers -------------------------------------------
class StampedTap(AmiTap):
    """AmiTap that notes when each ring's frame came off its socket: AgentCalled for a queue,
    or (sticky) the caller leg's DialBegin to an agent phone, given the agent's MemberName."""

    def __init__(
        self, settings: Settings, transcript: Path, members: dict[str, str] | None = None
    ) -> None:
        self.rings: list[tuple[float, Event]] = []  # before super(): its thread starts there
        self.members = members  # sticky: phone interface -> username
        self.queued: set[str] = set()  # sticky: calls that went to a queue (owner busy)
        super().__init__(settings, transcript)

    def is_ring(self, event: Event) -> bool:
        if self.members is None:
            return event.get("Event") == "AgentCalled"
        return (
            event.get("Event") == "DialBegin"
            and event.get("Channel", "").startswith("PJSIP/carrier-")
            and event.get("DestChannel", "").rsplit("-", 1)[0] in self.members
            and event.get("Linkedid") not in self.queued  # a queue's ring, not the owner's
        )

    def _frame(self, text: str) -> None:
        read_at = time.time()  # the frame was read from the socket microseconds ago
        before = len(self.events)
        super()._frame(text)
        # Only this thread appends events, so a new last event is this frame's.
        if len(self.events) > before and self.events[-1].get("Event") == "QueueCallerJoin":
            self.queued.add(self.events[-1].get("Linkedid", ""))
        if len(self.events) > before and self.is_ring(self.events[-1]):
            event = self.events[-1]
            if self.members is not None:
                event["MemberName"] = self.members[event["DestChannel"].rsplit("-", 1)[0]]
            self.rings.append((read_at, event))


@dataclass
class AgentTab:
    username: str
    ws: ClientConnection
    pops: dict[str, float] = field(default_factory=dict)  # linkedid → first pop's arrival
    pending: set[str] = field(default_factory=set)  # first pop came before its 360
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        async for raw in self.ws:
            at = time.time()  # before parsing: the pop has arrived
            message = json.loads(raw)
            if message.get("type") != "pop":
                continue
            linkedid = message["pop"]["linkedid"]
            if linkedid not in self.pops:
                self.pops[linkedid] = at
                if message["pop"].get("match") == "pending":
                    self.pending.add(linkedid)

    async def wait_pop(self, linkedid: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while linkedid not in self.pops and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return linkedid in self.pops


async def open_tab(server: Server, username: str) -> AgentTab:
    cookie = await asyncio.to_thread(server.login, username)
    url = server.base.replace("http", "ws", 1) + "/ws"
    ws = await websockets.connect(
        url, additional_headers={"Cookie": cookie, "Origin": server.base}, max_queue=None
    )
    hello = json.loads(await ws.recv())  # registered with the hub once it says hello
    if hello.get("type") != "hello":
        raise BenchError(f"{username}: expected hello on the WebSocket, got {hello}")
    tab = AgentTab(username, ws)
    tab.reader = asyncio.create_task(tab.read())
    return tab


async def close_tabs(tabs: list[AgentTab]) -> None:
    for tab in tabs:
        await tab.ws.close()
    await asyncio.gather(*(t.reader for t in tabs if t.reader), return_exceptions=True)


# -- where the CPU went -----------------------------------------------------------------------
def process_cpu(pid: int | None, children: bool = False) -> float:
    """CPU seconds (user + system, all threads) a live process has used, or with `children`
    what its exited children have used; 0 when there is no such process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    ticks = int(fields[13]) + int(fields[14]) if children else int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def reaped_children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_cpu() -> float:
    """CPU seconds all CPUs have been busy since boot (everything but idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuMeter:
    """CPU used by each part of the rig between start() and report(), in % of one CPU."""

    parts: dict[str, Callable[[], float]]  # name → its cumulative CPU seconds
    before: dict[str, float] = field(default_factory=dict)
    started: float = 0.0

    def start(self) -> None:
        self.before = {name: read() for name, read in self.parts.items()}
        self.started = time.monotonic()

    def report(self) -> str:
        wall = time.monotonic() - self.started
        used = {name: read() - self.before[name] for name, read in self.parts.items()}
        machine = used.pop("machine")
        used["the rest (kernel, other processes)"] = machine - sum(used.values())
        text = ", ".join(f"{name} {100 * cpu / wall:.0f}%" for name, cpu in used.items())
        return (
            f"CPU over the run, % of one CPU ({os.cpu_count()} CPUs, {100 * machine / wall:.0f}%"
            f" used in all):\n  {text}"
        )


# -- the run ----------------------------------------------------------------------------------
@dataclass
class Rig:
    """What runs during the measurement; the ExitStack stops all of it."""

    pbx: PbxUnderTest
    server: Server
    tap: StampedTap
    phones: list[Sipp]
    stack: ExitStack

    def meter(self) -> CpuMeter:
        asterisk, server = read_pid(self.pbx.paths), self.server.process.pid
        return CpuMeter(
            {
                "machine": machine_cpu,
                "asterisk": lambda: process_cpu(asterisk),
                "hotline serve": lambda: process_cpu(server),
                # The server runs ffmpeg for each recording's Opus copy (recordings ingest).
                "its ffmpeg": lambda: process_cpu(server, children=True),
                "SIPp phones": lambda: sum(process_cpu(p.proc.pid) for p in self.phones),
                # The carrier SIPp has exited, and been reaped by us, when report() reads it.
                "SIPp carrier": reaped_children_cpu,
                "this bench": lambda: process_cpu(os.getpid()),
            }
        )


@dataclass
class Run:
    placed: int
    sipp_ok: int
    sipp_failed: int
    entry_to_ring_s: float
    started_at: float
    events: list[Event]
    rings: list[tuple[float, Event]]
    tabs: dict[str, AgentTab]
    cpu: str


def is_carrier_entry(event: Event) -> bool:
    return event.get("Event") == "Newchannel" and event.get("Context") == "from-carrier"


# Waits poll rather than block a thread: asyncio.run() joins its worker threads on the way
# out, so a thread blocked in a long wait would hold up Ctrl-C until the wait ran out.
async def next_event(tap: StampedTap, matches: Callable[[Event], bool], start: int) -> Event:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = next((e for e in list(tap.events[start:]) if matches(e)), None)
        if found is not None:
            return found
        await asyncio.sleep(0.05)
    raise BenchError("the warm-up call never rang an agent (60 s); see ami.txt")


async def exited(sipp: Sipp, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while sipp.proc.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    return sipp.proc.poll() is not None


async def warm_up(rig: Rig, tabs: dict[str, AgentTab], caller: str) -> float:
    """One call end to end before measuring: proves the path works, warms the server and
    returns how long a call takes from entering the PBX to ringing an agent (seconds)."""
    mark = rig.tap.mark()
    sipp, _ = start_carrier(rig.pbx, WORKDIR / "warm-up", [caller], 1, 1)
    rig.stack.callback(sipp.stop)
    entry = await next_event(rig.tap, is_carrier_entry, mark)
    linkedid = entry["Linkedid"]
    ring = await next_event(
        rig.tap, lambda e: rig.tap.is_ring(e) and e.get("Linkedid") == linkedid, mark
    )
    tab = tabs.get(ring.get("MemberName", ""))
    if tab is None or not await tab.wait_pop(linkedid, 10):
        raise BenchError(f"the warm-up call rang {ring.get('MemberName')} but no pop came")
    await exited(sipp, 60)  # its agent is free again for the run
    return float(ring["Timestamp"]) - float(entry["Timestamp"])


async def measure(
    args: argparse.Namespace, rig: Rig, agents: list[dict[str, str]], callers: list[str]
) -> Run:
    tabs: dict[str, AgentTab] = {}
    try:
        for row in agents:
            tabs[row["username"]] = await open_tab(rig.server, row["username"])
        print(f"{len(tabs)} agent tabs connected; warm-up call ...", flush=True)
        entry_to_ring = await warm_up(rig, tabs, callers[-1])
        calls = round(args.rate * args.seconds)
        print(f"placing {calls} calls at {args.rate:g}/s ...", flush=True)
        mark, rings_mark = rig.tap.mark(), len(rig.tap.rings)
        started_at = time.time()
        meter = rig.meter()
        meter.start()
        folder = WORKDIR / "carrier"
        carrier, stats = start_carrier(rig.pbx, folder, callers[:-1], args.rate, calls)
        rig.stack.callback(carrier.stop)
        if not await exited(carrier, args.seconds + 120):
            print("the carrier SIPp did not finish; reporting what came so far", flush=True)
        cpu = meter.report()
        await asyncio.sleep(SETTLE_S)
        ok, failed = sipp_totals(stats)
        return Run(
            calls,
            ok,
            failed,
            entry_to_ring,
            started_at,
            list(rig.tap.events[mark:]),
            list(rig.tap.rings[rings_mark:]),
            dict(tabs),
            cpu,
        )
    finally:
        await close_tabs(list(tabs.values()))


# -- figures ----------------------------------------------------------------------------------
def quantile(ordered: list[float], q: float) -> float:
    """Nearest-rank quantile of a sorted list."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    o = sorted(values)
    return (
        f"p50 {quantile(o, 0.50):6.2f}  p95 {quantile(o, 0.95):6.2f}  "
        f"p99 {quantile(o, 0.99):6.2f}  max {o[-1]:6.2f}  (min {o[0]:.2f}, "
        f"mean {statistics.fmean(o):.2f}) ms, n={len(o)}"
    )


@dataclass
class Sample:
    linkedid: str
    agent: str
    tap_ms: float  # tap's read of AgentCalled → pop at the WebSocket client
    asterisk_ms: float  # AgentCalled's Timestamp header → pop at the WebSocket client
    tap_lag_ms: float  # AgentCalled's Timestamp header → the tap's read: the yardstick's own lag
    at_s: float  # when AgentCalled was read, seconds into the run
    emitted_at: float  # AgentCalled's Timestamp header


def events_before(stamps: list[float], at: float, window: float) -> int:
    """How many events (by Asterisk's Timestamp, sorted) fall in the window before `at`."""
    return bisect.bisect_left(stamps, at) - bisect.bisect_left(stamps, at - window)


def samples(run: Run) -> tuple[list[Sample], list[tuple[str, str]], int]:
    """(matched samples, AgentCalled without a pop, pops without an AgentCalled)."""
    ours = {e["Linkedid"] for e in run.events if is_carrier_entry(e)}
    first_ring: dict[tuple[str, str], tuple[float, Event]] = {}
    for read_at, event in run.rings:
        key = (event.get("Linkedid", ""), event.get("MemberName", ""))
        if key[0] in ours:
            first_ring.setdefault(key, (read_at, event))
    matched: list[Sample] = []
    missing: list[tuple[str, str]] = []
    for (linkedid, agent), (read_at, event) in first_ring.items():
        tab = run.tabs.get(agent)
        popped = tab.pops.get(linkedid) if tab else None
        if popped is None:
            missing.append((linkedid, agent))
            continue
        emitted = float(event.get("Timestamp", "nan"))
        matched.append(
            Sample(
                linkedid,
                agent,
                (popped - read_at) * 1000,
                (popped - emitted) * 1000,
                (read_at - emitted) * 1000,
                read_at - run.started_at,
                emitted,
            )
        )
    popped_keys = {(lid, t.username) for t in run.tabs.values() for lid in t.pops if lid in ours}
    return matched, missing, len(popped_keys - set(first_ring))


def report(run: Run, rss_mb: float | None) -> int:
    ours = {e["Linkedid"] for e in run.events if is_carrier_entry(e)}
    queued = {e.get("Linkedid") for e in run.events if e.get("Event") == "QueueCallerJoin"}
    abandoned = [e for e in run.events if e.get("Event") == "QueueCallerAbandon"]
    rung = [e for _, e in run.rings if e.get("Linkedid") in ours]
    queues = Counter(e.get("Queue", "?") for e in rung)
    pops = sum(1 for t in run.tabs.values() for lid in t.pops if lid in ours)
    pending = sum(1 for t in run.tabs.values() for lid in t.pending if lid in ours)
    matched, missing, stray = samples(run)
    line = "{:<22}{:5d}   {}".format
    print(
        f"\na call rings its agent {run.entry_to_ring_s:.1f} s after entering the PBX (welcome, "
        f"lookup, menu key {MENU_KEY}); the phone rings {RING_MS / 1000:g} s, then "
        f"{TALK_MS / 1000:g} s of talk"
    )
    print(line("calls placed", run.placed, f"(SIPp: {run.sipp_ok} ok, {run.sipp_failed} failed)"))
    joined = f"queued {len(queued & ours)}, abandoned in the queue {len(abandoned)}"
    if len(queued & ours) < len(ours):
        joined += " (the others lost their menu key, e.g. keyed during the welcome; see ami.txt)"
    print(line("entered the PBX", len(ours), joined))
    queue_text = ", ".join(f"queue {q}: {n}" for q, n in sorted(queues.items()))
    print(line("AgentCalled events", len(rung), f"({queue_text or 'none'})"))
    print(line("pops received", pops, f"({pending} went out as pending, before their 360)"))
    print(line("matched", len(matched), ""))
    print(line("pops missing", len(missing), "(AgentCalled with no pop to that agent)"))
    if stray:
        print(f"pops without AgentCalled {stray}")
    print("\nlatency, AMI tap read of AgentCalled → pop read by the agent's WebSocket client:")
    print(f"  {summary([s.tap_ms for s in matched])}")
    print("latency, Asterisk's AgentCalled Timestamp → pop read by the WebSocket client:")
    print(f"  {summary([s.asterisk_ms for s in matched])}")
    print("the tap's own lag, Asterisk's Timestamp → the tap's read of AgentCalled:")
    print(f"  {summary([s.tap_lag_ms for s in matched])}")
    slowest = sorted(matched, key=lambda s: s.tap_ms, reverse=True)[:5]
    if slowest:
        print("slowest, with the AMI events Asterisk emitted in the 100 ms before (the server")
        print("handles events strictly in order, so a burst ahead of AgentCalled delays its pop):")
        stamps = sorted(float(e["Timestamp"]) for e in run.events if "Timestamp" in e)
        for s in slowest:
            ahead = events_before(stamps, s.emitted_at, 0.1)
            print(f"  {s.tap_ms:6.1f} ms at {s.at_s:4.1f} s into the run, {ahead} events before")
    dump = WORKDIR / "samples.json"
    dump.write_text(json.dumps([dataclasses.asdict(s) for s in matched], indent=1))
    print(f"per-call samples: {dump.relative_to(REPO)}")
    if missing:
        print("missing: " + ", ".join(f"{lid}→{agent}" for lid, agent in missing[:10]))
    print(f"\n{run.cpu}")
    if rss_mb is not None:
        print(f"server RSS at the end: {rss_mb:.0f} MB")
    if not matched:
        print("\nnothing measured: no AgentCalled was matched to a pop", file=sys.stderr)
        return 1
    return 0


# -- the whole bench --------------------------------------------------------------------------
def check_machine() -> None:
    if os.geteuid() != 0:
        raise BenchError("needs root (the PBX runs in a chroot), like the real-PBX tests")
    tools = missing_tools()
    if tools:
        raise BenchError(f"missing {', '.join(tools)}: apt-get install {' '.join(tools)}")


def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(143)  # unwinds through the ExitStack, so everything is stopped


def bench(args: argparse.Namespace) -> int:
    check_machine()
    shutil.rmtree(WORKDIR, ignore_errors=True)
    WORKDIR.mkdir(parents=True)
    schema.prepare()
    agents = agent_rows(args.agents)
    db_path = WORKDIR / "crm.db"
    sticky = args.route == "sticky"
    callers = asyncio.run(prepare_crm(db_path, args.customers, agents, sticky))
    needed = round(args.rate * args.seconds) + 1
    if len(callers) < needed:
        raise BenchError(f"{len(callers)} usable VIP callers for {needed} calls: raise --customers")
    Sipp._media_port = MEDIA_PORT
    with ExitStack() as stack:
        print(f"starting PBX instance {INSTANCE} ...", flush=True)
        pbx = start_pbx(WORKDIR, agents)
        stack.callback(clear_spool, pbx)  # runs last: after the PBX has stopped
        stack.callback(pbx.stop)
        phones: list[Sipp] = []
        for row in agents:
            endpoint = row["phone_interface"].removeprefix("PJSIP/")
            phones.append(start_phone(pbx, endpoint, RING_MS, WORKDIR))
            stack.callback(phones[-1].stop)
        server = stack.enter_context(hotline_serve(pbx, f"sqlite+aiosqlite:///{db_path}", WORKDIR))
        members = {row["phone_interface"]: row["username"] for row in agents} if sticky else None
        tap = StampedTap(pbx.settings, WORKDIR / "ami.txt", members)
        stack.callback(tap.close)
        rig = Rig(pbx, server, tap, phones, stack)
        run = asyncio.run(measure(args, rig, agents, callers[:needed]))
        rss = server.rss_mb()
    status = report(run, rss)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=5.0, help="new calls per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to place calls")
    parser.add_argument("--agents", type=int, default=40, help="agent phones and tabs")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument(
        "--route",
        choices=("queue", "sticky"),
        default="queue",
        help="queue: the vip queue rings a free agent; sticky: the customer's own agent",
    )
    args = parser.parse_args()
    busy = args.rate * (RING_MS / 1000 + TALK_MS / 1000 + WRAPUP_S)
    if args.agents < busy:
        print(f"note: about {busy:.0f} agents are busy at once at this rate; calls will queue")
    # The tap's thread and the WebSocket clients share this process: a short GIL switch
    # interval keeps one from holding up the other's timestamp by the default 5 ms.
    sys.setswitchinterval(0.0005)
    signal.signal(signal.SIGTERM, on_sigterm)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    try:
        return bench(args)
    except BenchError as exc:
        print(f"pop_latency_pbx: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # the ExitStack has stopped everything by now
        print("pop_latency_pbx: interrupted; PBX, phones and server stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
