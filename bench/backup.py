"""Backup benchmark: `hotline backup` of N recordings, full and incremental, and the restore.

    .venv/bin/python bench/backup.py [--recordings 1000] [--seconds 2] [--runs 3] [--dir D]

Each recording is an 8 kHz 16-bit mono WAV (2 s: 32 KB) plus a stand-in for its Opus copy
(random bytes of the size a 24 kb/s Opus would have, so no ffmpeg run per file), with a
complete row (sha256, size) in a throw-away SQLite database. The backup is the product's
own path (agent_desktop.cli.backup_ops.back_up: database copy, recordings copied through a
temporary name, sha256-checked, fsynced, manifest); `cp -r` of the same recordings directory
on the same disk is printed for scale. Files are in the page cache. Prints figures only
(medians of --runs; the full backup and the restore start from an empty target each run).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from agent_desktop import schema  # noqa: E402
from agent_desktop.cli import backup_ops  # noqa: E402
from crm_core import migrate  # noqa: E402
from crm_core.db import Database  # noqa: E402
from crm_core.settings import Settings  # noqa: E402
from recordings.models import Recording  # noqa: E402

RATE = 8000


def make_recordings(
    root: Path, count: int, seconds: float, first: int = 0
) -> list[dict[str, object]]:
    samples = os.urandom(int(seconds * RATE) * 2)
    opus_size = int(seconds * 24_000 / 8)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    rows = []
    for number in range(first, first + count):
        ended = start + timedelta(minutes=number * 7)
        name = f"20261125-0100-in-17955{number:05d}.0"
        wav_rel = f"{ended:%Y/%m/%d}/{name}.wav"
        opus_rel = f"{ended:%Y/%m/%d}/{name}.opus"
        wav_path = root / wav_rel
        wav_path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(wav_path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            # Distinct content per file, as real calls have.
            out.writeframes(number.to_bytes(4, "little") + samples[4:])
        (root / opus_rel).write_bytes(b"OggS" + os.urandom(opus_size - 4))
        data = wav_path.read_bytes()
        rows.append(
            {
                "server": "main",
                "source_path": f"/spool/{name}.wav",
                "linkedid": name,
                "state": "complete",
                "wav_path": wav_rel,
                "opus_path": opus_rel,
                "sha256": hashlib.sha256(data).hexdigest(),
                "size_bytes": len(data),
                "duration_seconds": seconds,
                "ended_at": ended,
                "attempts": 1,
                "created_at": ended,
            }
        )
    return rows


async def add_rows(db: Database, rows: list[dict[str, object]]) -> None:
    async with db.transaction() as session:
        await session.execute(insert(Recording), rows)


def now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(started: tuple[float, float]) -> tuple[float, float]:
    """(wall, CPU of this process's threads) since `started`."""
    return time.perf_counter() - started[0], time.process_time() - started[1]


def cp_cpu() -> float:
    """CPU of the last waited-for child (cp)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = usage.ru_utime + usage.ru_stime
    spent = total - _children[0]
    _children[0] = total
    return spent


_children = [0.0]


def quiet() -> None:
    # The progress bars go to stderr; the figures are what this prints.
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recordings", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", help="work directory (default: a new one under the temp dir)")
    args = parser.parse_args()
    schema.prepare()
    work = Path(tempfile.mkdtemp(prefix="hotline-bench-backup-", dir=args.dir))
    try:
        await run(work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def run(work: Path, args: argparse.Namespace) -> None:
    live = work / "recordings"
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{work / 'hotline.db'}",
        var_dir=str(work),
        recordings_dir=str(live),
    )
    await asyncio.to_thread(migrate.upgrade, settings)
    db = Database.open(settings)
    rows = make_recordings(live, args.recordings, args.seconds)
    await add_rows(db, rows)
    total_bytes = sum(p.stat().st_size for p in live.rglob("*") if p.is_file())
    print(
        f"{args.recordings:,} recordings ({2 * args.recordings:,} files, "
        f"{total_bytes / 1e6:.1f} MB), {args.runs} runs, medians:"
    )
    stderr = sys.stderr
    quiet()
    try:
        figures = await measure(work, db, live, settings, args)
    finally:
        sys.stderr = stderr
    print(f"  {'':<40} {'wall s':>7} {'CPU s':>7}   (wall of each run)")
    for label, values in figures:
        runs = ", ".join(f"{wall:.2f}" for wall, _cpu in values)
        wall = statistics.median(w for w, _c in values)
        cpu = statistics.median(c for _w, c in values)
        print(f"  {label:<40} {wall:7.2f} {cpu:7.2f}   ({runs})")


async def measure(
    work: Path, db: Database, live: Path, settings: Settings, args: argparse.Namespace
) -> list[tuple[str, list[tuple[float, float]]]]:
    full: list[tuple[float, float]] = []
    incremental: list[tuple[float, float]] = []
    one_new: list[tuple[float, float]] = []
    restore: list[tuple[float, float]] = []
    cp: list[tuple[float, float]] = []
    for number in range(args.runs):
        dest = work / f"backup{number}"
        started = now()
        outcome = await backup_ops.back_up(db, dest)
        full.append(since(started))
        assert outcome.report.copied == outcome.report.total and not outcome.report.problems
        started = now()
        again = await backup_ops.back_up(db, dest)
        incremental.append(since(started))
        assert again.report.copied == 0
        await add_rows(db, make_recordings(live, 1, args.seconds, first=100_000 + number))
        started = now()
        third = await backup_ops.back_up(db, dest)
        one_new.append(since(started))
        assert third.report.copied == 2 and len(third.report.copied_ids) == 1
        target = work / f"restored{number}"
        fresh = settings.replace(
            database_url=f"sqlite+aiosqlite:///{target / 'hotline.db'}",
            recordings_dir=str(target / "recordings"),
        )
        started = now()
        restored = await backup_ops.restore(fresh, dest)
        restore.append(since(started))
        assert restored.report is not None and not restored.report.problems
        cp_cpu()  # from here
        started = now()
        await asyncio.to_thread(
            subprocess.run, ["cp", "-r", str(live), str(work / f"cp{number}")], check=True
        )
        cp.append((time.perf_counter() - started[0], cp_cpu()))
        shutil.rmtree(dest)
        shutil.rmtree(target)
        shutil.rmtree(work / f"cp{number}")
    await db.close()
    return [
        ("full backup (database + every file)", full),
        ("incremental backup, nothing new", incremental),
        ("incremental backup, 1 new recording", one_new),
        ("restore into an empty data directory", restore),
        ("cp -r of the recordings directory (scale)", cp),
    ]


if __name__ == "__main__":
    asyncio.run(main())
