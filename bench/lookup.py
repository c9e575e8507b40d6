"""Caller lookup and search latency on a large CRM, on SQLite and PostgreSQL.

    python bench/lookup.py --customers 1000000            # both backends
    python bench/lookup.py --customers 100000 --backends sqlite

Seeds a fresh database per backend (timed), then prints p50/p99 in milliseconds for:
number lookup through our service; the same query as bare SQL through the raw driver
(aiosqlite / asyncpg) in the same run; pinyin-initials search; VIN-tail search; and a few
more searches for context. Figures only: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select, text

from crm_core import migrate
from crm_core.db import Database, sqlite_path
from crm_core.lookup import SUFFIX_DIGITS, NumberLookup, compile_lookup
from crm_core.models import Customer, PhoneNumber, Vehicle
from crm_core.phones import normalize, suffix_key
from crm_core.progress import Progress
from crm_core.search import search
from crm_core.seed import seed_customers
from crm_core.settings import Settings

# Its own database, so a benchmark never drops the schema the test suite is using.
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/hotline_bench"


async def ensure_pg_database() -> None:
    import asyncpg

    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = 'hotline_bench'"):
            await conn.execute("CREATE DATABASE hotline_bench")
    finally:
        await conn.close()


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99


async def timed(calls: list[Callable[[], Awaitable[Any]]]) -> list[float]:
    for call in calls[: min(50, len(calls))]:  # warm caches and statement caches
        await call()
    out = []
    for call in calls:
        started = time.perf_counter()
        await call()
        out.append((time.perf_counter() - started) * 1000)
    return out


async def fresh_database(backend: str, workdir: Path) -> Settings:
    if backend == "sqlite":
        path = workdir / "lookup-bench.db"
        for suffix in ("", "-wal", "-shm"):
            await asyncio.to_thread(Path(f"{path}{suffix}").unlink, missing_ok=True)
        settings = Settings(database_url=f"sqlite+aiosqlite:///{path}")
    else:
        await ensure_pg_database()
        settings = Settings(database_url=PG_URL)
        db = Database.open(settings)
        async with db.engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await db.close()
    await asyncio.to_thread(migrate.upgrade, settings)
    return settings


async def sample_rows(db: Database, model: Any, column: Any, count: int, top: int) -> list[Any]:
    ids = random.Random(42).sample(range(1, top + 1), min(count, top))
    async with db.connect() as conn:
        rows = await conn.execute(select(column).where(model.id.in_(ids)))
        return [r[0] for r in rows]


def bare_sql(db: Database, e164: str) -> tuple[str, list[str]]:
    """Exactly the SQL and parameters our lookup sends, for the raw-driver comparison."""
    phone = normalize(e164)
    assert phone is not None
    query = compile_lookup("sqlite" if db.settings.is_sqlite else "postgresql", with_suffix=True)
    rev = suffix_key(phone.digits)[:SUFFIX_DIGITS]
    return query.sql, query.params(phone.e164, rev)


async def raw_driver_timings(db: Database, numbers: list[str]) -> list[float]:
    statements = [bare_sql(db, n) for n in numbers]
    if db.settings.is_sqlite:
        import aiosqlite

        async with aiosqlite.connect(str(sqlite_path(db.settings.database_url))) as conn:

            async def one(sql: str, params: Any) -> None:
                async with conn.execute(sql, params) as cursor:
                    await cursor.fetchall()

            return await timed([lambda s=s, p=p: one(s, p) for s, p in statements])
    import asyncpg

    conn = await asyncpg.connect(PG_URL.replace("+asyncpg", ""))
    try:
        prepared = await conn.prepare(statements[0][0])
        return await timed([lambda p=p: prepared.fetch(*p) for _, p in statements])
    finally:
        await conn.close()


async def run_backend(backend: str, customers: int, samples: int, workdir: Path) -> None:
    print(f"\n== {backend}: {customers:,} customers ==", flush=True)
    settings = await fresh_database(backend, workdir)
    db = Database.open(settings, pool_size=5) if backend == "postgres" else Database.open(settings)
    bar = Progress(f"seeding ({backend})", customers)
    result = await seed_customers(db, customers, seed=1, on_progress=bar.update)
    bar.finish()
    print(
        f"seeded {result.customers:,} customers, {result.contacts:,} contacts, "
        f"{result.phones:,} phones, {result.vehicles:,} vehicles in {result.seconds:.1f} s"
    )
    if backend == "sqlite":
        async with db.engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    else:
        async with db.engine.begin() as conn:
            await conn.execute(text("ANALYZE"))

    numbers = await sample_rows(db, PhoneNumber, PhoneNumber.e164, samples, result.phones)
    initials = await sample_rows(db, Customer, Customer.name_initials, samples, customers)
    names = await sample_rows(db, Customer, Customer.name, samples, customers)
    tails = await sample_rows(db, Vehicle, Vehicle.vin_tail, samples, result.vehicles)
    plates = await sample_rows(db, Vehicle, Vehicle.plate, samples, result.vehicles)
    rng = random.Random(7)
    unknown = [f"+86139{rng.randint(0, 99_999_999):08d}" for _ in range(samples)]

    finder = await NumberLookup(settings).open()

    def each(fn: Callable[[Any], Awaitable[Any]], items: list[Any]) -> list[Callable[[], Any]]:
        return [lambda item=item: fn(item) for item in items if item]

    def find(q: str) -> Awaitable[Any]:
        return search(db, q)

    rows: list[tuple[str, list[float]]] = [
        ("lookup by number (service)", await timed(each(finder.find, numbers))),
        ("same query, bare SQL (raw driver)", await raw_driver_timings(db, numbers)),
        ("lookup, unknown caller (service)", await timed(each(finder.find, unknown))),
        ("pinyin-initials search", await timed(each(find, initials))),
        ("initials, 2 letters ('zs')", await timed(each(find, [q[:2] for q in initials]))),
        ("VIN-tail search", await timed(each(find, tails))),
        ("name search, first 4 chars", await timed(each(find, [q[:4] for q in names]))),
        ("plate search", await timed(each(find, plates))),
        ("phone last-4 search", await timed(each(find, [n[-4:] for n in numbers]))),
    ]
    print(f"{'measure':<36} {'p50 ms':>8} {'p99 ms':>8}   (n={samples})")
    for label, values in rows:
        p50, p99 = percentiles(values)
        print(f"{label:<36} {p50:8.3f} {p99:8.3f}")
    service, bare = percentiles(rows[0][1]), percentiles(rows[1][1])
    print(
        f"overhead of our code over bare SQL: p50 {service[0] / bare[0]:.2f}x, "
        f"p99 {service[1] / bare[1]:.2f}x"
    )
    await finder.close()
    await db.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--workdir", default="var/bench")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for backend in args.backends.split(","):
        if backend not in ("sqlite", "postgres"):
            parser.error(f"unknown backend {backend!r}; use sqlite and/or postgres")
        asyncio.run(run_backend(backend, args.customers, args.samples, workdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
