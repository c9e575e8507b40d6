"""CPU per call of the CTI database worker: the call log, the pop rows and the 360 build.

    .venv/bin/python bench/cti_db_cpu.py [--calls 500] [--repeat 3] [--batch-ms 20]

That worker is a process of its own (cti/db_worker.py), but on a 2-core machine its CPU is
CPU the serving process that sends pops may need. This drives the real
writers (CallLogWriter, PopWriter, Pop360Builder) on one fresh event loop in one thread,
against a throw-away SQLite database with seeded customers, with the domain events the
tracker produces for a queue call. Calls arrive `--rate` per second; the events that fall in
one `--batch-ms` window are queued together and drained, as the writers batch whatever is
queued. Each part is timed on its own. Prints figures only.

`thread` is CPU of the worker's own loop thread; `process` adds aiosqlite's driver thread,
which runs the SQL.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent_desktop import schema  # noqa: E402
from crm_core import migrate  # noqa: E402
from crm_core.db import Database  # noqa: E402
from crm_core.lookup import NumberLookup  # noqa: E402
from crm_core.models import PhoneNumber  # noqa: E402
from crm_core.seed import seed_customers  # noqa: E402
from crm_core.settings import Settings  # noqa: E402
from crm_core.users import create_user  # noqa: E402
from cti.call_events import (  # noqa: E402
    AgentRinging,
    CallAnswered,
    CallEnded,
    CallQueued,
    CallStarted,
    Direction,
    Outcome,
    RecordingStarted,
)
from cti.call_log import CallLogWriter  # noqa: E402
from cti.directory import AgentDirectory  # noqa: E402
from cti.models import Call, ScreenPop  # noqa: E402
from cti.pop_payload import Pop360Builder  # noqa: E402
from cti.pop_writer import PopWriter  # noqa: E402
from cti.pops import Pop  # noqa: E402

SERVER = "pbx1"
# When each event of a call happens, in seconds after it entered: the greeting and IVR,
# the queue, a ring answered after a few seconds, a short talk.
QUEUED_AFTER, RINGING_AFTER, ANSWERED_AFTER, ENDED_AFTER = 1.0, 1.1, 1.2, 3.0


class NullBus:
    def __init__(self) -> None:
        self.published = 0

    async def publish(self, event: object) -> None:
        self.published += 1


@dataclass
class Cpu:
    thread: float = 0.0
    process: float = 0.0

    def per_call(self, calls: int) -> str:
        return (
            f"{self.thread * 1000 / calls:6.3f} ms thread   "
            f"{self.process * 1000 / calls:6.3f} ms process"
        )


async def timed(cpu: Cpu, work: Awaitable[object]) -> None:
    thread, process = time.thread_time(), time.process_time()
    await work
    cpu.thread += time.thread_time() - thread
    cpu.process += time.process_time() - process


# -- the world ---------------------------------------------------------------------------------
async def prepare(path: Path, customers: int, agents: int) -> list[str]:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{path}")
    await asyncio.to_thread(migrate.upgrade, settings)
    db = Database.open(settings)
    try:
        await seed_customers(db, customers, seed=1)
        for n in range(agents):
            await create_user(
                db,
                {
                    "username": f"bench{n}",
                    "display_name": f"坐席{n}",
                    "phone_interface": f"PJSIP/{3000 + n}",
                },
            )
        async with db.connect() as conn:
            numbers = (
                await conn.execute(
                    select(PhoneNumber.e164).where(PhoneNumber.kind == "mobile").limit(5000)
                )
            ).scalars()
            return [n.removeprefix("+86") for n in numbers]
    finally:
        await db.close()


def call_events(n: int, caller: str, agents: int, entered: float) -> list[tuple[float, object]]:
    """A queue call's events, as the tracker emits them, with when each happens."""
    linkedid, ring_id = f"{int(entered)}.{n}", f"{int(entered)}.{n}1"
    agent = n % agents
    interface, member = f"PJSIP/{3000 + agent}", f"bench{agent}"
    path = f"/var/spool/asterisk/monitor/{linkedid}.wav"
    ring_at, answer_at = entered + RINGING_AFTER, entered + ANSWERED_AFTER
    ended_at = entered + ENDED_AFTER
    return [
        (
            entered,
            CallStarted(SERVER, linkedid, Direction.INBOUND, caller, caller, "4008001234", entered),
        ),
        (entered, RecordingStarted(SERVER, linkedid, path, entered)),
        (entered + QUEUED_AFTER, CallQueued(SERVER, linkedid, "hotline", entered + QUEUED_AFTER)),
        (
            ring_at,
            AgentRinging(SERVER, linkedid, ring_id, interface, member, "hotline", caller, ring_at),
        ),
        (
            answer_at,
            CallAnswered(SERVER, linkedid, ring_id, interface, member, "hotline", answer_at),
        ),
        (
            ended_at,
            CallEnded(
                SERVER, linkedid, Outcome.ANSWERED, ended_at, "Normal Clearing", ended_at - 0.1
            ),
        ),
    ]


def pop_changes(
    n: int, entered: float, agent_id: int, payload: dict[str, Any]
) -> list[tuple[float, tuple[str, dict[str, Any]]]]:
    """A pop's row changes as PopService submits them: insert, receipts, connected, ended."""
    rang = entered + RINGING_AFTER
    linkedid = f"{int(entered)}.{n}"
    pop = Pop(
        str(uuid.uuid4()),
        agent_id,
        SERVER,
        linkedid,
        f"{linkedid}1",
        "ringing",
        "13800000000",
        "hotline",
        rang,
        payload,
    )
    at = datetime.fromtimestamp(rang, UTC)
    receipt = {"pop_id": pop.id, "user_id": pop.user_id, "at": at}
    displayed = at + timedelta(seconds=0.03)
    return [
        (rang, ("insert", pop.row())),
        (rang + 0.01, ("receipt", {**receipt, "stage": "delivered"})),
        (rang + 0.03, ("receipt", {**receipt, "stage": "displayed", "at": displayed})),
        (
            entered + ANSWERED_AFTER,
            ("state", {"id": pop.id, "state": "connected", "closed_at": None}),
        ),
        (entered + ENDED_AFTER, ("state", {"id": pop.id, "state": "ended", "closed_at": at})),
    ]


def in_batches(timeline: list[tuple[float, Any]], batch_s: float) -> list[list[Any]]:
    """The timeline cut into windows of `batch_s`: what the writer finds queued each time."""
    batches: dict[int, list[Any]] = {}
    for at, item in sorted(timeline, key=lambda pair: pair[0]):
        batches.setdefault(int(at / batch_s), []).append(item)
    return [batches[k] for k in sorted(batches)]


async def agent_of(directory: AgentDirectory, n: int, agents: int) -> int:
    agent = await directory.resolve(f"PJSIP/{3000 + n % agents}")
    assert agent is not None, "the bench's agents are created in prepare()"
    return agent.user_id


# -- the parts ---------------------------------------------------------------------------------
async def run_batches(
    batches: list[list[Any]], submit: Callable[[Any], None], drain: Callable[[], Awaitable[None]]
) -> Cpu:
    cpu = Cpu()
    for batch in batches:
        for item in batch:
            submit(item)
        await timed(cpu, drain())
    return cpu


@dataclass
class Writers:
    directory: AgentDirectory
    call_log: CallLogWriter
    pops: PopWriter
    builder: Pop360Builder


async def one_pass(
    w: Writers, args: argparse.Namespace, callers: list[str], first: int, count: int
) -> dict[str, Cpu]:
    """`count` calls, numbered from `first`, through each part in turn."""
    entered = [1_700_000_000.0 + (first + i) / args.rate for i in range(count)]
    numbers = [callers[(first + i) * 7 % len(callers)] for i in range(count)]
    agent_ids = [await agent_of(w.directory, first + i, args.agents) for i in range(count)]
    log_timeline = [
        pair
        for i in range(count)
        for pair in call_events(first + i, numbers[i], args.agents, entered[i])
    ]
    log_batches = in_batches(log_timeline, args.batch_ms / 1000)
    log_cpu = await run_batches(log_batches, w.call_log.submit, w.call_log.drain)

    # After the call log, so callers have recent calls in their 360 as they would.
    build_cpu, built = Cpu(), []
    for number in numbers:
        result: list[dict[str, Any]] = []

        async def build(number: str = number, out: list[dict[str, Any]] = result) -> None:
            out.append(await w.builder.build(number, None))

        await timed(build_cpu, build())
        built.append(result[0])

    pop_timeline = [
        pair
        for i in range(count)
        for pair in pop_changes(first + i, entered[i], agent_ids[i], built[i])
    ]
    pop_batches = in_batches(pop_timeline, args.batch_ms / 1000)
    pop_cpu = await run_batches(pop_batches, lambda change: w.pops.submit(*change), w.pops.drain)
    return {"call log": log_cpu, "pop rows": pop_cpu, "360 build": build_cpu}


def report(passes: list[dict[str, Cpu]], args: argparse.Namespace) -> None:
    """Per part, the pass that used the least CPU: on a shared machine the others carry
    noise (another process's cache traffic), not more work."""
    events = len(call_events(0, "1", 1, 0.0))
    per_batch = events * args.rate * args.batch_ms / 1000
    print(
        f"{args.calls} calls at {args.rate:g}/s, {args.batch_ms:g} ms batches "
        f"(~{per_batch:.1f} call-log events per batch), best of {len(passes)} passes"
    )
    total = Cpu()
    for part in passes[0]:
        best = min((p[part] for p in passes), key=lambda cpu: cpu.thread)
        total.thread += best.thread
        total.process += best.process
        print(f"  {part:<10} {best.per_call(args.calls)}")
    print(f"  {'total':<10} {total.per_call(args.calls)}")


async def bench(db: Database, args: argparse.Namespace, callers: list[str]) -> None:
    finder = await NumberLookup(db.settings).open()
    directory = AgentDirectory(db)
    await directory.reload()
    bus = NullBus()
    w = Writers(
        directory,
        CallLogWriter(db, directory, finder, bus),
        PopWriter(db),
        Pop360Builder(db, finder, None),
    )
    w.call_log.start()
    w.pops.start()
    try:
        warm = args.calls // 10  # statement compilation and caches: once per process
        await one_pass(w, args, callers, 0, warm)
        passes = [
            await one_pass(w, args, callers, warm + n * args.calls, args.calls)
            for n in range(args.repeat)
        ]
        report(passes, args)
        await check(db, warm + args.repeat * args.calls, bus.published)
    finally:
        await w.call_log.stop()
        await w.pops.stop()
        await finder.close()


async def check(db: Database, expected: int, published: int) -> None:
    """Not an assert: a line saying the writers did store what they were given."""
    async with db.connect() as conn:
        ended = (
            await conn.execute(select(func.count()).select_from(Call).where(Call.status == "ended"))
        ).scalar()
        popped = (
            await conn.execute(
                select(func.count()).select_from(ScreenPop).where(ScreenPop.state == "ended")
            )
        ).scalar()
    print(
        f"  stored: {ended}/{expected} calls ended, {popped}/{expected} pops ended, "
        f"{published} recordings published"
    )


async def main(args: argparse.Namespace) -> None:
    schema.prepare()
    (ROOT / "var" / "bench").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="cti-db-cpu-", dir=ROOT / "var" / "bench"))
    try:
        path = work / "bench.db"
        callers = await prepare(path, args.customers, args.agents)
        db = Database.open(Settings(database_url=f"sqlite+aiosqlite:///{path}"))
        try:
            await bench(db, args, callers)
        finally:
            await db.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--agents", type=int, default=2)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--batch-ms", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
