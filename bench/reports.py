"""Call KPI report latency on a year of calls, on SQLite and PostgreSQL.

    python bench/reports.py                          # 365 days x 5,000 calls/day, both backends
    python bench/reports.py --days 30 --backends sqlite

Seeds a fresh database per backend with generated calls (in large executemany batches
through the raw driver), then prints p50/p95 in milliseconds for: a month's report grouped
by agent (cti.kpi_report.report, all agents); one agent's month by day; a month by queue;
and the wallboard's today figures (cti.kpi.today_by_queue). Figures only: nothing here
passes or fails. The PostgreSQL run uses its own database, bench_reports.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text

from agent_desktop import schema
from crm_core import migrate
from crm_core.db import Database, sqlite_path
from crm_core.models import User
from crm_core.settings import Settings
from cti.kpi import today_by_queue
from cti.kpi_report import KpiFilter, report

PG_DATABASE = "bench_reports"
PG_URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{PG_DATABASE}"
BEIJING = timedelta(hours=8)
AGENTS = 60
REGIONS = ("华东", "华北", "华南")
DISPOSITIONS = ("consultation", "service_request", "complaint", "resolved", "other")
BATCH = 20_000
COLUMNS = (
    "server, linkedid, direction, number, entered_at, queued_at, answered_at, ended_at,"
    " queue, agent_id, wait_seconds, talk_seconds, hold_seconds, wrapup_seconds, status,"
    " outcome, disposition, survey_score, routed, voicemail_at"
)


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def one_call(n: int, entered: datetime, rng: random.Random, agents: list[int]) -> tuple[Any, ...]:
    queue = "vip" if rng.random() < 0.15 else "hotline"
    wait = rng.expovariate(1 / 18)
    roll = rng.random()
    agent = answered = disposition = score = routed = voicemail = None
    talk = hold = wrapup = None
    if roll < 0.84:
        outcome, agent = "answered", rng.choice(agents)
        answered = entered + timedelta(seconds=wait)
        talk, hold = rng.expovariate(1 / 200), rng.choice((0.0, 0.0, 0.0, rng.uniform(5, 60)))
        wrapup, disposition = rng.uniform(5, 60), rng.choice(DISPOSITIONS)
        score = rng.randint(1, 5) if rng.random() < 0.3 else None
    else:
        outcome = "missed" if roll > 0.99 else "abandoned"
        wait = wait / 3 if roll < 0.87 else wait  # some short abandons
        routed = "callback" if 0.95 < roll < 0.97 else None
        voicemail = entered + timedelta(seconds=wait) if 0.97 < roll < 0.98 else None
    ended = entered + timedelta(seconds=wait + (talk or 0.0))
    return (
        "pbx", f"B{n}", "inbound", "13900000000", entered, entered, answered, ended,
        queue, agent, wait, talk, hold, wrapup, "ended", outcome, disposition, score, routed,
        voicemail,
    )  # fmt: skip


def generate(days: int, per_day: int, first_day: datetime, agents: list[int]) -> Any:
    """Batches of call tuples, day by day, 08:00-20:00 Beijing time."""
    rng = random.Random(18)
    n, batch = 0, []
    for day in range(days):
        opening = first_day + timedelta(days=day, hours=8)
        offsets = sorted(rng.uniform(0, 12 * 3600) for _ in range(per_day))
        for offset in offsets:
            batch.append(one_call(n, opening + timedelta(seconds=offset), rng, agents))
            n += 1
            if len(batch) >= BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def sqlite_value(value: Any) -> Any:
    # The storage format SQLAlchemy's SQLite DateTime (and so UTCDateTime) reads and writes.
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def insert_sqlite(path: Path, batches: Any) -> int:
    marks = ", ".join("?" * len(COLUMNS.split(",")))
    statement = f"INSERT INTO calls ({COLUMNS}) VALUES ({marks})"  # noqa: S608
    conn, total = sqlite3.connect(path), 0
    try:
        for batch in batches:
            conn.executemany(statement, [tuple(map(sqlite_value, row)) for row in batch])
            conn.commit()
            total += len(batch)
    finally:
        conn.close()
    return total


async def insert_postgres(batches: Any) -> int:
    import asyncpg

    marks = ", ".join(f"${i + 1}" for i in range(len(COLUMNS.split(","))))
    statement = f"INSERT INTO calls ({COLUMNS}) VALUES ({marks})"  # noqa: S608
    conn, total = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{PG_DATABASE}"), 0
    try:
        for batch in batches:
            await conn.executemany(statement, batch)
            total += len(batch)
        await conn.execute("ANALYZE calls")
    finally:
        await conn.close()
    return total


async def fresh_database(backend: str, workdir: Path) -> Settings:
    if backend == "sqlite":
        path = workdir / "reports-bench.db"
        for suffix in ("", "-wal", "-shm"):
            await asyncio.to_thread(Path(f"{path}{suffix}").unlink, missing_ok=True)
        settings = Settings(database_url=f"sqlite+aiosqlite:///{path}")
    else:
        import asyncpg

        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE}")
            await conn.execute(f"CREATE DATABASE {PG_DATABASE}")
        finally:
            await conn.close()
        settings = Settings(database_url=PG_URL)
    await asyncio.to_thread(migrate.upgrade, settings)
    return settings


async def make_agents(db: Database) -> list[int]:
    async with db.transaction() as session:
        users = [
            User(
                username=f"bench{i}", display_name=f"坐席{i}", role="agent",
                region=REGIONS[i % len(REGIONS)], password_hash="x",
            )
            for i in range(AGENTS)
        ]  # fmt: skip
        session.add_all(users)
    return [u.id for u in users]


async def timed(label: str, runs: list[Callable[[], Awaitable[Any]]]) -> None:
    for run in runs[:3]:  # warm the caches
        await run()
    samples = []
    for run in runs:
        started = time.perf_counter()
        await run()
        samples.append((time.perf_counter() - started) * 1000)
    p50, p95 = percentiles(samples)
    print(f"  {label:<34} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms   ({len(samples)} runs)")


async def run_backend(backend: str, days: int, per_day: int, samples: int, workdir: Path) -> None:
    settings = await fresh_database(backend, workdir)
    db = Database.open(settings)
    agents = await make_agents(db)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first_day = today - timedelta(days=days - 1) - BEIJING
    started = time.perf_counter()
    batches = generate(days, per_day, first_day, agents)
    path = sqlite_path(settings.database_url)
    if path is not None:
        rows = await asyncio.to_thread(insert_sqlite, path, batches)
    else:
        rows = await insert_postgres(batches)
    if path is not None:
        async with db.engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    seconds = time.perf_counter() - started
    print(f"{backend}: {rows:,} calls over {days} days, seeded in {seconds:.0f} s")
    rng = random.Random(5)
    month_days = min(30, days)

    def month(**extra: Any) -> KpiFilter:
        start = first_day + timedelta(days=rng.randrange(days - month_days + 1))
        return KpiFilter(start=start, end=start + timedelta(days=month_days), **extra)

    now = first_day + timedelta(days=days - 1, hours=18)  # 18:00 Beijing on the last day

    def runs(grouping: str, agent: bool = False) -> list[Callable[[], Awaitable[Any]]]:
        filters = [month(agent_id=rng.choice(agents)) if agent else month() for _ in range(samples)]
        return [lambda f=f: report(db, grouping, f) for f in filters]

    await timed("month by agent (all agents)", runs("agent"))
    await timed("one agent's month by day", runs("day", agent=True))
    await timed("month by queue", runs("queue"))
    await timed("today by queue (wallboard)", [lambda: today_by_queue(db, now)] * samples * 5)
    await db.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--calls-per-day", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--workdir", default="var/bench")
    args = parser.parse_args()
    schema.prepare()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for backend in args.backends.split(","):
        asyncio.run(run_backend(backend, args.days, args.calls_per_day, args.samples, workdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
