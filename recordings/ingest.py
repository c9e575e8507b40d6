"""Ingest: wait until MixMonitor has closed the file, check it, hash it, measure it, move it
into managed storage, transcode the Opus copy and index it, exactly once per file.

The row is written first (state pending, planned location), so a crash anywhere leaves
something a later pass can finish: the source still in the spool, or already moved.
Truncated or corrupt files go to quarantine with an ALERT log line and are never complete.
A full disk leaves the row pending with the reason, logs it and is retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import wave
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.db import Database, is_integrity_error
from crm_core.events import CallRecordingFinished
from recordings.errors import DiskFull
from recordings.meta import CallMeta, HostPath
from recordings.models import Recording, RecordingState
from recordings.storage import Storage, dated_name
from recordings.transcode import to_opus
from recordings.wavfile import Header, HeaderState, inspect_header, wav_facts

log = logging.getLogger(__name__)
# An ingest holds its row this long at most; a crashed holder's files are retried after it.
LEASE_SECONDS = 120
FindCall = Callable[[Path], Awaitable[CallMeta | None]]
DONE = (RecordingState.COMPLETE, RecordingState.QUARANTINED, RecordingState.PURGED)
LINK_FIELDS = (
    "linkedid", "call_id", "customer_id", "agent_id", "queue", "service_request_id",
    "direction", "answered_at", "ended_at", "talk_seconds",
)  # fmt: skip


def _spool_files(spool: Path) -> list[Path]:
    return sorted(spool.glob("*.wav")) if spool.is_dir() else []


class RecordingIngest:
    def __init__(
        self,
        db: Database,
        storage: Storage,
        *,
        settle_seconds: float = 0.6,
        poll_seconds: float = 0.2,
        finish_timeout: float = 30.0,
        stale_open_seconds: float = 300.0,
        transcode: bool = True,
    ) -> None:
        self.db, self.storage = db, storage
        self.settle, self.poll, self.finish_timeout = settle_seconds, poll_seconds, finish_timeout
        self.stale_open = stale_open_seconds
        self.transcode = transcode
        self.node = uuid.uuid4().hex[:16]
        self.queue: asyncio.Queue[CallMeta] = asyncio.Queue()
        self._locks: dict[str, asyncio.Lock] = {}
        self._workers: list[asyncio.Task[None]] = []

    # --- background worker -------------------------------------------------------------

    def subscriber(self, host_path: HostPath) -> Callable[[CallRecordingFinished], None]:
        """The bus handler: queue the work, never block the publisher on a file settling."""

        def on_finished(event: CallRecordingFinished) -> None:
            self.queue.put_nowait(CallMeta.from_event(event, host_path))

        return on_finished

    def start(self, workers: int = 1) -> None:
        for number in range(workers):
            self._workers.append(asyncio.create_task(self._run(), name=f"rec-ingest-{number}"))

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()

    async def drain(self) -> None:
        await self.queue.join()

    async def _run(self) -> None:
        while True:
            meta = await self.queue.get()
            try:
                await self.ingest(meta)
            except Exception:
                log.exception("recording ingest failed for %s", meta.source)
            finally:
                self.queue.task_done()

    # --- one file ----------------------------------------------------------------------

    async def ingest(self, meta: CallMeta, *, rescan: bool = False) -> Recording | None:
        """Idempotent: a file already complete (or quarantined, purged) is only re-linked.

        Two transactions per file: the claim (row and lease together) and the result (which
        also gives the lease back)."""
        lock = self._locks.setdefault(meta.key, asyncio.Lock())
        async with lock:
            row, leased = await self._claim(meta)
            if RecordingState(row.state) in DONE:
                return row
            if not leased:
                return None  # another node (or an overlapping run) is on it
            finished = False
            try:
                result = await self._process(row, meta, rescan)
                finished = True  # _process always ends in _update, which released the lease
                return result
            except FileNotFoundError:
                return None  # moved under us by a run whose lease we outlived
            finally:
                if not finished:
                    await self._release(row.id)

    async def _claim(self, meta: CallMeta) -> tuple[Recording, bool]:
        """(row, whether we hold its lease), creating the row with the lease if it is new."""
        for _ in range(2):
            async with self.db.transaction() as session:
                row = await session.scalar(
                    select(Recording).where(Recording.source_path == meta.key)
                )
                if row is not None:
                    if meta.from_call_log:
                        for name in LINK_FIELDS:
                            setattr(row, name, getattr(meta, name))
                    if RecordingState(row.state) in DONE:
                        return row, False
                    return row, await self._take_lease(session, row.id)
            try:
                return await self._insert(meta), True
            except Exception as exc:
                if not is_integrity_error(exc):
                    raise  # otherwise another worker or node claimed it first: read theirs
        raise RuntimeError(f"could not claim {meta.key}")

    async def _take_lease(self, session: AsyncSession, recording_id: int) -> bool:
        # A conditional UPDATE, so two nodes reading the same free row cannot both take it.
        now = datetime.now(UTC)
        expired = now - timedelta(seconds=LEASE_SECONDS)
        result = await session.execute(
            update(Recording)
            .where(
                Recording.id == recording_id,
                Recording.state == RecordingState.PENDING.value,
                or_(Recording.claimed_at.is_(None), Recording.claimed_at < expired),
            )
            .values(claimed_by=self.node, claimed_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def _release(self, recording_id: int) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(Recording)
                .where(Recording.id == recording_id, Recording.claimed_by == self.node)
                .values(claimed_by=None, claimed_at=None)
            )

    async def _insert(self, meta: CallMeta) -> Recording:
        ended = meta.ended_at or datetime.now(UTC)
        row = Recording(
            server=meta.server,
            source_path=meta.key,
            wav_path=dated_name(ended, meta.source.name),
            claimed_by=self.node,
            claimed_at=datetime.now(UTC),
            **{name: getattr(meta, name) for name in LINK_FIELDS},
        )
        async with self.db.transaction() as session:
            session.add(row)
        return row

    async def _process(self, row: Recording, meta: CallMeta, rescan: bool) -> Recording | None:
        assert row.wav_path is not None
        managed = self.storage.path(row.wav_path)
        current = meta.source if meta.source.exists() else managed
        if not current.exists():
            return await self._update(row, error="file missing")
        header = await self._settled_header(current, rescan)
        if header is None:
            return await self._update(row, error="still being written")
        if header.state is not HeaderState.FINISHED:
            return await self._quarantine(row, current, f"{header.state}: {header.reason}")
        try:
            facts = await asyncio.to_thread(wav_facts, current, header)
        except (wave.Error, EOFError, ValueError) as exc:
            return await self._quarantine(row, current, f"corrupt: {exc}")
        try:
            await asyncio.to_thread(self.storage.move_in, current, row.wav_path)
            opus, note = await self._opus(row.wav_path)
        except DiskFull as exc:
            log.error("ALERT recordings disk full, will retry %s: %s", meta.source.name, exc)
            return await self._update(row, error=f"disk full: {exc}"[:300], attempt=True)
        return await self._update(
            row,
            state=RecordingState.COMPLETE,
            error=note,
            opus_path=opus,
            sha256=facts.sha256,
            size_bytes=facts.size_bytes,
            duration_seconds=facts.duration_seconds,
            rms=facts.rms,
            peaks=facts.peaks,
            ingested_at=datetime.now(UTC),
        )

    async def _opus(self, wav_relative: str) -> tuple[str | None, str | None]:
        if not self.transcode:
            return None, None
        temporary, final = self.storage.write_beside(wav_relative, ".opus")
        wav = self.storage.path(wav_relative)
        try:
            await asyncio.to_thread(to_opus, wav, temporary, final)
        except DiskFull:
            raise
        except Exception as exc:
            # The WAV is safe and playable; the streaming copy can be made again later.
            log.exception("recording transcode failed for %s", wav.name)
            return None, f"transcode failed: {exc}"[:300]
        return self.storage.relative(final), None

    async def _settled_header(self, path: Path, rescan: bool) -> Header | None:
        """The header once the size has stopped changing; None while it is still written."""
        deadline = time.monotonic() + self.finish_timeout
        last_size, stable_since = -1, time.monotonic()
        while True:
            header = await asyncio.to_thread(inspect_header, path)
            now = time.monotonic()
            if header.file_size != last_size:
                last_size, stable_since = header.file_size, now
            settled = now - stable_since >= self.settle
            if settled and header.state is not HeaderState.OPEN:
                return header
            if header.state is HeaderState.OPEN and (rescan or now >= deadline):
                age = time.time() - (await asyncio.to_thread(path.stat)).st_mtime
                return header if age >= self.stale_open or (not rescan and settled) else None
            await asyncio.sleep(self.poll)

    async def _quarantine(self, row: Recording, path: Path, reason: str) -> Recording:
        target = self.storage.quarantine_name(path.name)
        await asyncio.to_thread(self.storage.move_in, path, target)
        log.error("ALERT recording quarantined: %s (%s) -> %s", path.name, reason, target)
        return await self._update(
            row, state=RecordingState.QUARANTINED, wav_path=target, error=reason[:300]
        )

    async def _update(self, row: Recording, attempt: bool = False, **values: object) -> Recording:
        """Write the outcome and give the lease back, in one transaction."""
        async with self.db.transaction() as session:
            fresh = await session.get(Recording, row.id)
            assert fresh is not None
            for name, value in values.items():
                setattr(fresh, name, value.value if isinstance(value, RecordingState) else value)
            if attempt:
                fresh.attempts += 1
            if fresh.claimed_by == self.node:
                fresh.claimed_by, fresh.claimed_at = None, None
        return fresh

    # --- start-up and retries ----------------------------------------------------------

    async def rescan(
        self,
        spool: Path,
        server: str,
        find_call: FindCall | None = None,
        orphans: bool = True,
    ) -> int:
        """Ingest what arrived while we were down; files still being written are left.
        `orphans=False` leaves files the call log does not know (a spool shared with
        another installation, such as a developer's PBX next to a test run)."""
        done = 0
        for path in await asyncio.to_thread(_spool_files, spool):
            meta = await find_call(path) if find_call else None
            if meta is None and not orphans:
                continue
            row = await self.ingest(meta or CallMeta.from_file(path, server), rescan=True)
            done += row is not None and row.state == RecordingState.COMPLETE
        return done

    async def retry_pending(self) -> int:
        """Pending rows with a reason (full disk, a crash half-way): try them again."""
        async with self.db.transaction() as session:
            rows = (
                await session.scalars(
                    select(Recording).where(Recording.state == RecordingState.PENDING.value)
                )
            ).all()
        finished = 0
        for row in rows:
            meta = CallMeta(
                source=Path(row.source_path),
                server=row.server,
                **{name: getattr(row, name) for name in LINK_FIELDS},
            )
            result = await self.ingest(meta, rescan=True)
            finished += result is not None and result.state == RecordingState.COMPLETE
        return finished
