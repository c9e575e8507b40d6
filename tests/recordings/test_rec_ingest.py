"""Ingest of MixMonitor files: facts, managed storage, idempotency, quarantine, full disk,
and the start-up spool re-scan."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest
from rec_audio import open_header, truncate, write_wav
from sqlalchemy import func, select

from crm_core.db import Database
from crm_core.events import CallRecordingFinished, EventBus
from crm_core.settings import Settings
from recordings.errors import DiskFull
from recordings.ingest import RecordingIngest
from recordings.meta import CallMeta
from recordings.models import Recording
from recordings.storage import Storage

NAME = "20261125-005344-in-1795568024.0.wav"


def make_ingest(db: Database, settings: Settings, **kw: object) -> RecordingIngest:
    storage = Storage(Path(settings.recordings_dir))
    options: dict[str, object] = {"settle_seconds": 0.2, "poll_seconds": 0.05}
    options.update(kw)
    return RecordingIngest(db, storage, **options)  # type: ignore[arg-type]


def event(path: str, talk: float = 3.0) -> CallRecordingFinished:
    return CallRecordingFinished(
        call_id=7, server="main", linkedid="1795568024.0", path=path, direction="inbound",
        customer_id=None, agent_id=None, queue="hotline", service_request_id=None,
        answered_at="2026-11-25T00:53:45+00:00", ended_at="2026-11-25T00:53:49+00:00",
        talk_seconds=talk,
    )  # fmt: skip


async def rows(db: Database) -> list[Recording]:
    async with db.transaction() as session:
        return list((await session.scalars(select(Recording).order_by(Recording.id))).all())


async def test_event_ingests_once_with_facts_and_opus(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    spool = tmp_path / "root" / "spool"
    write_wav(spool / NAME, seconds=3.0)
    bus = EventBus()
    ingest = make_ingest(db, settings)
    bus.subscribe(
        CallRecordingFinished, ingest.subscriber(lambda p: tmp_path / "root" / p.lstrip("/"))
    )
    ingest.start()
    try:
        await bus.publish(event("/spool/" + NAME))
        await bus.publish(event("/spool/" + NAME))  # a duplicate event: still one recording
        await asyncio.wait_for(ingest.drain(), 60)
    finally:
        await ingest.stop()
    (row,) = await rows(db)
    assert row.state == "complete" and row.error is None
    assert row.wav_path == "2026/11/25/" + NAME
    assert abs((row.duration_seconds or 0) - 3.0) < 0.01
    assert (row.rms or 0) > 5000 and row.peaks and max(row.peaks) > 7000
    assert row.sha256 and len(row.sha256) == 64 and row.queue == "hotline" and row.call_id == 7
    managed = Path(settings.recordings_dir) / row.wav_path
    assert managed.is_file() and not (spool / NAME).exists()
    assert row.opus_path and (Path(settings.recordings_dir) / row.opus_path).stat().st_size > 0


async def test_truncated_wav_is_quarantined_and_never_complete(
    db: Database, settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = truncate(write_wav(tmp_path / NAME, seconds=2.0), 10_000)
    ingest = make_ingest(db, settings)
    with caplog.at_level(logging.ERROR):
        row = await ingest.ingest(CallMeta(source=path, server="main", from_call_log=True))
    assert row is not None and row.state == "quarantined" and "truncated" in (row.error or "")
    assert (Path(settings.recordings_dir) / "quarantine" / NAME).is_file()
    assert not path.exists()
    assert any("ALERT recording quarantined" in r.message for r in caplog.records)
    again = await ingest.ingest(CallMeta(source=path, server="main", from_call_log=True))
    assert again is not None and again.state == "quarantined"
    assert len(await rows(db)) == 1


async def test_corrupt_file_and_dead_writer_are_quarantined(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    garbage = tmp_path / "20261125-000000-in-1.0.wav"
    garbage.write_bytes(b"this is not audio" * 100)
    dead = open_header(write_wav(tmp_path / "20261125-000000-in-2.0.wav", seconds=1.0))
    ingest = make_ingest(db, settings, finish_timeout=0.5)
    first = await ingest.ingest(CallMeta(source=garbage, server="main", from_call_log=True))
    second = await ingest.ingest(CallMeta(source=dead, server="main", from_call_log=True))
    assert first is not None and first.state == "quarantined" and "corrupt" in (first.error or "")
    assert second is not None and second.state == "quarantined" and "open" in (second.error or "")


async def test_file_still_being_written_is_left_alone_by_the_rescan(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    open_header(write_wav(tmp_path / "spool" / NAME, seconds=1.0))  # fresh mtime: live call
    ingest = make_ingest(db, settings)
    assert await ingest.rescan(tmp_path / "spool", "main") == 0
    (row,) = await rows(db)
    assert row.state == "pending" and (tmp_path / "spool" / NAME).exists()


async def test_restart_with_files_in_the_spool_ingests_each_exactly_once(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    names = [f"20261125-01000{i}-in-17955680{i}.0.wav" for i in range(3)]
    for name in names:
        write_wav(spool / name, seconds=1.0)
    looked_up: list[Path] = []

    async def find_call(path: Path) -> CallMeta | None:
        looked_up.append(path)
        return CallMeta(source=path, server="main", agent_id=None, queue="vip", from_call_log=True)

    first_run = make_ingest(db, settings, transcode=False)
    second_run = make_ingest(db, settings, transcode=False)  # the next start-up
    done = await asyncio.gather(
        first_run.rescan(spool, "main", find_call), second_run.rescan(spool, "main", find_call)
    )
    assert sum(done) >= 3
    assert await make_ingest(db, settings).rescan(spool, "main", find_call) == 0
    found = await rows(db)
    assert sorted(Path(r.source_path).name for r in found) == names
    assert all(r.state == "complete" and r.queue == "vip" for r in found)
    assert list(spool.iterdir()) == []
    async with db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(Recording)) == 3


async def test_full_disk_is_reported_retried_and_deletes_nothing(
    db: Database, settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    source = write_wav(tmp_path / "spool" / NAME, seconds=1.0)
    before = source.read_bytes()
    ingest = make_ingest(db, settings, transcode=False)
    real_move = Storage.move_in

    def full(self: Storage, path: Path, relative: str) -> Path:
        raise DiskFull(f"no room: {OSError(errno.ENOSPC, 'No space left on device')}")

    monkeypatch.setattr(Storage, "move_in", full)
    with caplog.at_level(logging.ERROR):
        row = await ingest.ingest(CallMeta(source=source, server="main", from_call_log=True))
    assert row is not None and row.state == "pending" and "disk full" in (row.error or "")
    assert row.attempts == 1 and source.read_bytes() == before
    assert any("disk full" in r.message for r in caplog.records)
    monkeypatch.setattr(Storage, "move_in", real_move)
    assert await ingest.retry_pending() == 1
    (row,) = await rows(db)
    assert row.state == "complete" and not source.exists()


async def test_a_mixed_batch_gets_each_file_its_own_outcome_and_gives_every_lease_back(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    done_before = write_wav(spool / "20261125-020000-in-1795569000.0.wav", seconds=1.0)
    ingest = make_ingest(db, settings, transcode=False, parallel=2)
    first = await ingest.ingest(CallMeta(source=done_before, server="main"))
    assert first is not None and first.state == "complete"
    good = write_wav(spool / "20261125-020001-in-1795569001.0.wav", seconds=1.5)
    broken = truncate(write_wav(spool / "20261125-020002-in-1795569002.0.wav", 2.0), 5_000)
    metas = [
        CallMeta(source=good, server="main"),
        CallMeta(source=broken, server="main"),
        CallMeta(source=good, server="main"),  # the same file twice in one batch
        CallMeta(source=done_before, server="main"),  # already complete: only returned
    ]
    results = await ingest.ingest_many(metas)
    assert [r.state if r else None for r in results] == [
        "complete", "quarantined", "complete", "complete"
    ]  # fmt: skip
    assert results[0] is results[2] and results[3] is not None and results[3].id == first.id
    found = await rows(db)
    assert len(found) == 3 and all(r.claimed_by is None for r in found)
    assert ingest._locks == {}  # no per-file lock is kept once the file is done
    assert abs((results[0].duration_seconds or 0) - 1.5) < 0.01  # type: ignore[union-attr]


def test_long_calls_get_the_same_facts_from_the_bounded_memory_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recordings import wavfile

    path = write_wav(tmp_path / NAME, seconds=3.0)
    header = wavfile.inspect_header(path)
    in_memory = wavfile.wav_facts(path, header)
    monkeypatch.setattr(wavfile, "READ_ONCE_BYTES", 1024)  # as if the call were hours long
    assert wavfile.wav_facts(path, header) == in_memory
    assert in_memory.duration_seconds == 3.0 and len(in_memory.peaks) == wavfile.PEAK_BUCKETS


def test_a_reused_buffer_gives_each_file_its_own_facts(tmp_path: Path) -> None:
    """A lane reads file after file into one buffer: a short file read after a long one must
    not see the long one's bytes."""
    from recordings import wavfile

    long_call = write_wav(tmp_path / "long.wav", seconds=3.0)
    short_call = write_wav(tmp_path / "short.wav", seconds=0.5, amplitude=900)
    scratch = wavfile.Scratch()
    for path in (long_call, short_call, long_call):
        header = wavfile.inspect_header(path)
        assert wavfile.wav_facts(path, header, scratch=scratch) == wavfile.wav_facts(path, header)


async def test_stopping_mid_batch_gives_the_leases_back_and_a_later_try_finishes(
    db: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recordings import examine, wavfile

    spool = tmp_path / "spool"
    an_hour_ago = time.time() - 3600  # a backlog: examined in lanes, without watching
    for i in range(6):
        path = write_wav(spool / f"20261125-03000{i}-in-17955690{i}.0.wav", seconds=0.5)
        os.utime(path, (an_hour_ago, an_hour_ago))
    real_facts = wavfile.facts_of_bytes

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.15)  # a long call being hashed
        return real_facts(*args, **kwargs)

    monkeypatch.setattr(examine, "facts_of_bytes", slow)
    loop, one_moved = asyncio.get_running_loop(), asyncio.Event()
    real_place = examine.FileExaminer._place

    def place(self: examine.FileExaminer, *args: Any) -> Any:
        placed = real_place(self, *args)
        loop.call_soon_threadsafe(one_moved.set)
        return placed

    monkeypatch.setattr(examine.FileExaminer, "_place", place)
    ingest = make_ingest(db, settings, transcode=False, parallel=1)
    task = asyncio.create_task(ingest.rescan(spool, "main"))
    async with asyncio.timeout(10):  # stop once a file has left the spool, not before
        await one_moved.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    found = await rows(db)
    assert len(found) == 6 and all(r.claimed_by is None for r in found)
    done = [r for r in found if r.state == "complete"]
    assert len(done) < 6  # stopped part-way
    for row in done:  # complete means in storage, never half-written
        assert row.wav_path and (Path(settings.recordings_dir) / row.wav_path).exists()
    await asyncio.sleep(0.3)  # the file the lane was on is finished there, row still pending
    monkeypatch.setattr(examine, "facts_of_bytes", real_facts)
    assert await make_ingest(db, settings, transcode=False).retry_pending() == 6 - len(done)
    assert all(r.state == "complete" for r in await rows(db))
    assert list(spool.iterdir()) == []


async def test_a_file_another_node_is_on_is_read_perhaps_but_never_moved(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """The lanes read and hash files while the claim runs; only a file whose lease we got is
    moved. One leased by another node stays where it is, its row untouched."""
    spool = tmp_path / "spool"
    an_hour_ago = time.time() - 3600
    theirs = write_wav(spool / "20261125-040000-in-1795570000.0.wav", seconds=0.5)
    ours = write_wav(spool / "20261125-040001-in-1795570001.0.wav", seconds=0.5)
    for path in (theirs, ours):
        os.utime(path, (an_hour_ago, an_hour_ago))
    other_node = make_ingest(db, settings, transcode=False)
    await other_node.rows.claim([CallMeta(source=theirs, server="main")])  # holds the lease
    ingest = make_ingest(db, settings, transcode=False)
    assert await ingest.rescan(spool, "main") == 1
    by_name = {Path(r.source_path).name: r for r in await rows(db)}
    assert by_name[ours.name].state == "complete" and not ours.exists()
    mine_not = by_name[theirs.name]
    assert mine_not.state == "pending" and mine_not.claimed_by == other_node.node
    assert theirs.exists()


async def test_a_backlog_read_whole_in_the_lanes_gets_the_same_facts_and_quarantines(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """Backlog files are read whole in one open (Scratch.read_settled): the facts match the
    file-by-file path, and a broken one is still quarantined, never complete."""
    import wave

    from recordings import wavfile

    spool = tmp_path / "spool"
    good = write_wav(spool / "20261125-050000-in-1795571000.0.wav", seconds=1.5)
    expected = wavfile.wav_facts(good, wavfile.inspect_header(good))
    truncated = truncate(write_wav(spool / "20261125-050001-in-1795571001.0.wav", 2.0), 5_000)
    eight_bit = spool / "20261125-050002-in-1795571002.0.wav"
    with wave.open(str(eight_bit), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes(b"\x80" * 8000)
    an_hour_ago = time.time() - 3600
    for path in (good, truncated, eight_bit):
        os.utime(path, (an_hour_ago, an_hour_ago))
    assert await make_ingest(db, settings, transcode=False).rescan(spool, "main") == 1
    by_name = {Path(r.source_path).name: r for r in await rows(db)}
    row = by_name[good.name]
    assert row.state == "complete" and row.sha256 == expected.sha256
    assert row.peaks == expected.peaks and row.rms == expected.rms
    assert row.duration_seconds == expected.duration_seconds == 1.5
    assert by_name[truncated.name].state == "quarantined"
    assert "truncated" in (by_name[truncated.name].error or "")
    assert by_name[eight_bit.name].state == "quarantined"
    assert "16-bit mono" in (by_name[eight_bit.name].error or "")
