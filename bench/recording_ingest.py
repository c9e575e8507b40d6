"""Recording ingest benchmark: ingest MB/s against a plain `cp` of the same files on the
same disk in the same run (the ratio is the figure), and Opus transcode speed × real time.

    .venv/bin/python bench/recording_ingest.py [--files 40] [--seconds 120] [--runs 7]

Files are 8 kHz 16-bit mono WAVs like MixMonitor's, with speech-like noise. Ingest here is
the full pipeline without the transcode: header check, sha256, duration, RMS, peaks, the
move into the dated layout and the database row (a throw-away SQLite). The settle wait
(a deliberate pause to be sure MixMonitor has closed the file) is set to 0: it is latency,
not throughput. Files are in the page cache for both sides. Prints figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent_desktop import schema  # noqa: E402
from agent_desktop.server import use_serving_switch_interval  # noqa: E402
from crm_core import migrate  # noqa: E402
from crm_core.db import Database  # noqa: E402
from crm_core.settings import Settings  # noqa: E402
from recordings.ingest import RecordingIngest  # noqa: E402
from recordings.meta import CallMeta  # noqa: E402
from recordings.models import Recording  # noqa: E402
from recordings.storage import Storage  # noqa: E402
from recordings.transcode import to_opus  # noqa: E402

RATE = 8000


def make_files(folder: Path, count: int, seconds: float) -> list[Path]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    samples = (rng.normal(0, 3000, int(seconds * RATE))).clip(-32000, 32000).astype("<i2")
    paths = []
    for number in range(count):
        path = folder / f"20261125-0100{number:02d}-in-17955{number:05d}.0.wav"
        with wave.open(str(path), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(RATE)
            wav.writeframes(samples.tobytes())
        paths.append(path)
    return paths


def time_cp(files: list[Path], target: Path) -> float:
    target.mkdir()
    started = time.perf_counter()
    subprocess.run(["cp", *map(str, files), str(target)], check=True)
    return time.perf_counter() - started


async def time_ingest(files: list[Path], work: Path, workers: int) -> float:
    """Through the product's own path: the ingest queue and its worker tasks, with the
    interpreter's GIL switch interval as `hotline serve` sets it."""
    use_serving_switch_interval()
    schema.prepare()
    settings = Settings(database_url=f"sqlite+aiosqlite:///{work / 'bench.db'}")
    await asyncio.to_thread(migrate.upgrade, settings)
    db = Database.open(settings)
    ingest = RecordingIngest(
        db,
        Storage(work / "store"),
        settle_seconds=0,
        poll_seconds=0,
        transcode=False,
        parallel=workers,
    )
    ingest.start()
    # Warm-up, not timed: the engine's first connection and statement compilation are a
    # once-per-process cost (~100 ms), not throughput.
    warm = [p.rename(p.with_name("warm-" + p.name)) for p in make_files(work / "warm-up", 2, 1.0)]
    for path in warm:
        ingest.queue.put_nowait(CallMeta(source=path, server="main", from_call_log=True))
    await ingest.drain()
    started = time.perf_counter()
    for path in files:
        ingest.queue.put_nowait(CallMeta(source=path, server="main", from_call_log=True))
    await ingest.drain()
    elapsed = time.perf_counter() - started
    await ingest.stop()
    async with db.transaction() as session:
        states = list(await session.scalars(select(Recording.state)))
    await db.close()
    assert states == ["complete"] * (len(files) + len(warm)), states
    return elapsed


def time_transcode(files: list[Path], work: Path, seconds: float) -> tuple[float, float]:
    started = time.perf_counter()
    for path in files:
        final = work / (path.stem + ".opus")
        to_opus(path, work / (path.stem + ".part"), final)
    elapsed = time.perf_counter() - started
    return elapsed, seconds * len(files) / elapsed


def one_run(work: Path, args: argparse.Namespace) -> tuple[float, float, list[Path]]:
    """(cp seconds, ingest seconds, the files) for one pair of runs on fresh copies."""
    for_cp = make_files(work / "spool-cp", args.files, args.seconds)
    (work / "spool-ingest").mkdir()
    for_ingest = [Path(shutil.copy(p, work / "spool-ingest" / p.name)) for p in for_cp]
    # Before each side: nothing written earlier still on its way to disk, which would slow
    # whichever side it landed on (the files stay in the page cache).
    os.sync()
    cp_seconds = time_cp(for_cp, work / "cp-target")
    os.sync()
    ingest_seconds = asyncio.run(time_ingest(for_ingest, work, args.workers))
    return cp_seconds, ingest_seconds, for_cp


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--transcode-files", type=int, default=4)
    parser.add_argument("--workers", type=int, default=Settings().recordings_ingest_workers)
    # One run of 40 files takes ~0.1 s, and cp alone varied 41-74 ms from run to run on the
    # 2-vCPU machine (page cache, writeback): the figure is the median of several runs.
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    (ROOT / "var" / "bench").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rec-ingest-", dir=ROOT / "var" / "bench"))
    try:
        cp_times, ingest_times = [], []
        for run in range(args.runs):
            run_dir = work / f"run-{run}"
            cp_seconds, ingest_seconds, files = one_run(run_dir, args)
            megabytes = sum(p.stat().st_size for p in files) / 1e6
            cp_times.append(cp_seconds)
            ingest_times.append(ingest_seconds)
            print(
                f"run {run + 1}: cp {cp_seconds * 1000:5.0f} ms  ingest "
                f"{ingest_seconds * 1000:5.0f} ms  ratio {cp_seconds / ingest_seconds:.2f}",
                flush=True,
            )
            if run < args.runs - 1:
                shutil.rmtree(run_dir)
        cp_seconds, ingest_seconds = statistics.median(cp_times), statistics.median(ingest_times)
        cp_rate, ingest_rate = megabytes / cp_seconds, megabytes / ingest_seconds
        print(f"files: {args.files} × {args.seconds:.0f} s = {megabytes:.1f} MB, median of runs")
        print(f"cp:      {cp_seconds:.3f} s  {cp_rate:8.1f} MB/s")
        print(
            f"ingest:  {ingest_seconds:.3f} s  {ingest_rate:8.1f} MB/s  "
            f"(no transcode, {args.workers} workers)"
        )
        print(f"ratio ingest/cp: {ingest_rate / cp_rate:.2f}")
        sample = files[: args.transcode_files]
        if not sample:
            return
        elapsed, speed = time_transcode(sample, work, args.seconds)
        print(f"transcode to Opus: {len(sample)} × {args.seconds:.0f} s in {elapsed:.2f} s = "
              f"{speed:.0f}× real time")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
