"""SMS outbox benchmark: messages per second to the fake Twilio, and duplicates after kills.

    .venv/bin/python bench/sms_outbox.py [--messages 1000] [--kill-messages 300]

1. Throughput: N messages enqueued, one worker sends them through the real `twilio` client
   to the loopback fake; prints messages/s (and the same with the local backend).
2. Random kills: worker subprocesses are SIGKILLed at random moments and restarted until
   every message is sent; prints how many the provider received twice (must be 0) and how
   many were never sent (must be 0).
Uses a throw-away SQLite database unless DATABASE_URL names another. Prints figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "sms"))

from fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from agent_desktop import schema  # noqa: E402
from crm_core import migrate  # noqa: E402
from crm_core.db import Database  # noqa: E402
from crm_core.settings import Settings  # noqa: E402
from sms_gateway.backends import LocalBackend, SmsBackend  # noqa: E402
from sms_gateway.models import SmsMessage  # noqa: E402
from sms_gateway.outbox import enqueue  # noqa: E402
from sms_gateway.twilio_backend import TwilioBackend  # noqa: E402
from sms_gateway.worker import OutboxWorker  # noqa: E402


def fresh_settings() -> Settings:
    url = os.environ.get("DATABASE_URL")
    if not url:
        url = f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='smsbench-')}/bench.db"
    settings = Settings(database_url=url)
    schema.prepare()
    migrate.upgrade(settings)
    return settings


async def fill(db: Database, count: int, tag: str) -> None:
    async with db.transaction() as session:
        await session.execute(SmsMessage.__table__.delete())
    for start in range(0, count, 200):
        async with db.transaction() as session:
            for i in range(start, min(count, start + 200)):
                to = f"+86139{i:08d}"
                await enqueue(session, to, f"【派工单{i}】{tag} 请回复JD {i}接单", f"{tag}:{i}")


async def unsent(db: Database) -> int:
    async with db.transaction() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(SmsMessage).where(SmsMessage.state != "sent")
            )
            or 0
        )


async def throughput(db: Database, backend: SmsBackend, count: int, tag: str) -> float:
    await fill(db, count, tag)
    worker = OutboxWorker(db, backend, batch=100)
    started = time.perf_counter()
    while await worker.run_once():
        pass
    elapsed = time.perf_counter() - started
    assert await unsent(db) == 0
    return count / elapsed


def spawn(settings: Settings, fake_url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": settings.database_url, "BENCH_FAKE_URL": fake_url}
    return subprocess.Popen(
        [sys.executable, __file__, "--worker"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL
    )


async def random_kills(settings: Settings, db: Database, fake: FakeTwilio, count: int) -> None:
    await fill(db, count, "kill")
    fake.messages.clear()
    rng = random.Random(11)
    workers = [spawn(settings, fake.base_url) for _ in range(2)]
    kills, started = 0, time.perf_counter()
    try:
        while await unsent(db):
            await asyncio.sleep(rng.uniform(0.5, 2.5))
            victim = rng.randrange(len(workers))
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait()
            kills += 1
            workers[victim] = spawn(settings, fake.base_url)
            if time.perf_counter() - started > 300:
                print("gave up after 300 s", flush=True)
                break
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
    bodies = collections.Counter(m["body"] for m in fake.messages)
    duplicates = sum(n - 1 for n in bodies.values() if n > 1)
    print(
        f"random kills: {count} messages, {kills} SIGKILLs, "
        f"{len(fake.messages)} provider sends, duplicates={duplicates}, "
        f"never sent={await unsent(db)}, {time.perf_counter() - started:.1f} s"
    )


async def main(args: argparse.Namespace, settings: Settings) -> None:
    db = Database.open(settings)
    fake = await FakeTwilio().start()
    twilio = TwilioBackend(
        ACCOUNT_SID, AUTH_TOKEN, from_number=FROM_NUMBER, api_base_url=fake.base_url
    )
    try:
        print(f"database: {settings.database_url.split('://')[0]}")
        rate = await throughput(db, LocalBackend(), args.messages, "local")
        print(f"local backend: {args.messages} messages, {rate:.0f} messages/s")
        rate = await throughput(db, twilio, args.messages, "twilio")
        print(f"twilio client → fake provider: {args.messages} messages, {rate:.0f} messages/s")
        await random_kills(settings, db, fake, args.kill_messages)
    finally:
        await twilio.close()
        await fake.stop()
        await db.close()


async def worker_process() -> None:
    """One outbox worker with a short lease, so a killed one's messages come back quickly."""
    settings = Settings(database_url=os.environ["DATABASE_URL"])
    db = Database.open(settings)
    backend = TwilioBackend(
        ACCOUNT_SID, AUTH_TOKEN, from_number=FROM_NUMBER, api_base_url=os.environ["BENCH_FAKE_URL"]
    )
    worker = OutboxWorker(db, backend, lease=timedelta(seconds=2), batch=10)
    await worker.run(interval=0.05)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--kill-messages", type=int, default=300)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.worker:
        asyncio.run(worker_process())
    else:
        # Migrations run their own event loop, so before ours starts.
        asyncio.run(main(parsed, fresh_settings()))
