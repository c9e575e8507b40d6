"""Ingest: wait until MixMonitor has closed the file, check it, hash it, measure it, move it
into managed storage, transcode the Opus copy and index it, exactly once per file.

The row is written first (state pending, planned location), so a crash anywhere leaves
something a later pass can finish: the source still in the spool, or already moved.
Truncated or corrupt files go to quarantine with an ALERT log line and are never complete.
A full disk leaves the row pending with the reason, logs it and is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
import wave
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

from sqlalchemy import Table, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.db import Database, is_integrity_error
from crm_core.events import CallRecordingFinished
from recordings.errors import DiskFull
from recordings.meta import CallMeta, HostPath
from recordings.models import Recording, RecordingState
from recordings.storage import Storage, dated_name
from recordings.transcode import to_opus, transcoder
from recordings.wavfile import Header, HeaderState, inspect_header, wav_facts

log = logging.getLogger(__name__)
# An ingest holds its row this long at most; a crashed holder's files are retried after it.
LEASE_SECONDS = 120
# Core statements (executemany) where the ORM would send one statement per file.
RECORDINGS = cast(Table, Recording.__table__)
# Queued files claimed in one transaction, and results written per this many files.
BATCH = 32
FLUSH_EVERY = 8
FindCall = Callable[[Path], Awaitable[CallMeta | None]]
DONE = (RecordingState.COMPLETE, RecordingState.QUARANTINED, RecordingState.PURGED)
LINK_FIELDS = (
    "linkedid", "call_id", "customer_id", "agent_id", "queue", "service_request_id",
    "direction", "answered_at", "ended_at", "talk_seconds",
)  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    """What examining one file decided, written later with others in one transaction."""

    key: str
    recording_id: int
    values: Mapping[str, object] | None  # None: nothing to write, only give the lease back
    attempt: bool = False


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
        parallel: int = 2,
    ) -> None:
        self.db, self.storage = db, storage
        self.parallel = max(1, parallel)  # files examined at once (threads release the GIL)
        self.settle, self.poll, self.finish_timeout = settle_seconds, poll_seconds, finish_timeout
        self.stale_open = stale_open_seconds
        self.transcode = transcode
        self.node = uuid.uuid4().hex[:16]
        self.queue: asyncio.Queue[CallMeta] = asyncio.Queue()
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}  # key -> (lock, users)
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
            # Whatever else is already queued joins this batch: one claim transaction for
            # all of it, and results committed in groups (see _process_all).
            batch = [await self.queue.get()]
            while len(batch) < BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                await self.ingest_many(batch)
            except Exception:
                log.exception("recording ingest failed for %s", [m.source.name for m in batch])
            finally:
                for _ in batch:
                    self.queue.task_done()

    # --- files -------------------------------------------------------------------------

    async def ingest(self, meta: CallMeta, *, rescan: bool = False) -> Recording | None:
        """Idempotent: a file already complete (or quarantined, purged) is only re-linked."""
        return (await self.ingest_many([meta], rescan=rescan))[0]

    async def ingest_many(
        self, metas: list[CallMeta], *, rescan: bool = False
    ) -> list[Recording | None]:
        """Each file's row (None where another node holds it), in the order given.

        One transaction claims every row with its lease; the files are examined in threads,
        `self.parallel` at a time; finished results are committed together, and each result
        gives its lease back in the same transaction."""
        unique = {meta.key: meta for meta in metas}
        async with contextlib.AsyncExitStack() as stack:
            for key in sorted(unique):  # a fixed order: overlapping batches cannot deadlock
                await stack.enter_async_context(self._file_lock(key))
            claims = await self._claim(list(unique.values()))
            results: dict[str, Recording | None] = {}
            work: list[tuple[Recording, CallMeta]] = []
            for key, (row, leased) in claims.items():
                if RecordingState(row.state) in DONE:
                    results[key] = row
                elif not leased:
                    results[key] = None  # another node (or an overlapping run) is on it
                else:
                    work.append((row, unique[key]))
            results.update(await self._process_all(work, rescan))
        return [results[meta.key] for meta in metas]

    @contextlib.asynccontextmanager
    async def _file_lock(self, key: str) -> AsyncIterator[None]:
        """One file at a time in this process; the lock is forgotten when nobody needs it,
        so a server that runs for months does not keep one per recording ever made."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def _claim(self, metas: list[CallMeta]) -> dict[str, tuple[Recording, bool]]:
        """key -> (row, whether we hold its lease); new rows are created with the lease."""
        keys = [meta.key for meta in metas]
        for _ in range(2):
            try:
                async with self.db.transaction() as session:
                    found = await session.scalars(
                        select(Recording).where(Recording.source_path.in_(keys))
                    )
                    existing = {row.source_path: row for row in found}
                    claims: dict[str, tuple[Recording, bool]] = {}
                    fresh = [meta for meta in metas if meta.key not in existing]
                    if fresh:  # one executemany: the ORM would send one INSERT per file
                        rows = [self._new_row_values(m) for m in fresh]
                        await session.execute(insert(RECORDINGS), rows)
                        added = await session.scalars(
                            select(Recording).where(
                                Recording.source_path.in_([m.key for m in fresh])
                            )
                        )
                        claims.update({row.source_path: (row, True) for row in added})
                    for meta in metas:
                        row = existing.get(meta.key)
                        if row is None:
                            continue
                        if meta.from_call_log:
                            for name in LINK_FIELDS:
                                setattr(row, name, getattr(meta, name))
                        done = RecordingState(row.state) in DONE
                        leased = not done and await self._take_lease(session, row.id)
                        claims[meta.key] = (row, leased)
                return claims
            except Exception as exc:
                if not is_integrity_error(exc):
                    raise  # otherwise another worker or node claimed one first: read theirs
        raise RuntimeError(f"could not claim {keys}")

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

    def _new_row_values(self, meta: CallMeta) -> dict[str, object]:
        ended = meta.ended_at or datetime.now(UTC)
        return {
            "server": meta.server,
            "source_path": meta.key,
            "wav_path": dated_name(ended, meta.source.name),
            "claimed_by": self.node,
            "claimed_at": datetime.now(UTC),
            **{name: getattr(meta, name) for name in LINK_FIELDS},
        }

    async def _process_all(
        self, work: list[tuple[Recording, CallMeta]], rescan: bool
    ) -> dict[str, Recording | None]:
        """Examine the files `self.parallel` at a time and commit results in groups: whoever
        takes the commit lock writes everything finished so far."""
        results: dict[str, Recording | None] = {}
        finished: list[Outcome] = []
        gate, commit = asyncio.Semaphore(self.parallel), asyncio.Lock()

        async def flush(force: bool = False) -> None:
            # Every FLUSH_EVERY results, or at the end: a commit costs more than examining
            # a file, and a live call's batch of one is still written at once.
            if not force and len(finished) < FLUSH_EVERY:
                return
            async with commit:
                while finished:
                    batch = finished[:]
                    finished.clear()
                    results.update(await self._write(batch))

        async def one(row: Recording, meta: CallMeta) -> None:
            try:
                async with gate:
                    finished.append(await self._process(row, meta, rescan))
            except FileNotFoundError:  # moved under us by a run whose lease we outlived
                finished.append(Outcome(row.source_path, row.id, None))
            except BaseException:
                finished.append(Outcome(row.source_path, row.id, None))  # the lease goes back
                raise
            await flush()

        try:
            outcomes = await asyncio.gather(
                *(one(row, meta) for row, meta in work), return_exceptions=True
            )
        finally:  # also on shutdown: the rest, and the leases of files that failed
            await asyncio.shield(flush(force=True))
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return results

    async def _process(self, row: Recording, meta: CallMeta, rescan: bool) -> Outcome:
        assert row.wav_path is not None
        key = row.source_path
        managed = self.storage.path(row.wav_path)
        current = meta.source if meta.source.exists() else managed
        if not current.exists():
            return Outcome(key, row.id, {"error": "file missing"})
        header = await self._settled_header(current, rescan)
        if header is None:
            return Outcome(key, row.id, {"error": "still being written"})
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
            return Outcome(key, row.id, {"error": f"disk full: {exc}"[:300]}, attempt=True)
        return Outcome(
            key,
            row.id,
            {
                "state": RecordingState.COMPLETE.value,
                "error": note,
                "opus_path": opus,
                "sha256": facts.sha256,
                "size_bytes": facts.size_bytes,
                "duration_seconds": facts.duration_seconds,
                "rms": facts.rms,
                "peaks": facts.peaks,
                "ingested_at": datetime.now(UTC),
            },
        )

    async def _opus(self, wav_relative: str) -> tuple[str | None, str | None]:
        if not self.transcode:
            return None, None
        temporary, final = self.storage.write_beside(wav_relative, ".opus")
        wav = self.storage.path(wav_relative)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(transcoder(), to_opus, wav, temporary, final)
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
            # Not written to for `settle` seconds is as good as watching the size that long:
            # a backlog found by the re-scan does not wait the settle time file by file.
            settled = now - stable_since >= self.settle or header.age_seconds >= self.settle
            if settled and header.state is not HeaderState.OPEN:
                return header
            if header.state is HeaderState.OPEN and (rescan or now >= deadline):
                stale = header.age_seconds >= self.stale_open
                return header if stale or (not rescan and settled) else None
            await asyncio.sleep(self.poll)

    async def _quarantine(self, row: Recording, path: Path, reason: str) -> Outcome:
        target = self.storage.quarantine_name(path.name)
        await asyncio.to_thread(self.storage.move_in, path, target)
        log.error("ALERT recording quarantined: %s (%s) -> %s", path.name, reason, target)
        values = {
            "state": RecordingState.QUARANTINED.value,
            "wav_path": target,
            "error": reason[:300],
        }
        return Outcome(row.source_path, row.id, values)

    async def _write(self, outcomes: list[Outcome]) -> dict[str, Recording | None]:
        """Every outcome in one transaction; each gives its lease back. An outcome without
        values (the file was taken from under us) only gives the lease back.

        Core executemany per shape of outcome (complete, quarantined, error): the ORM's
        load-modify-flush cost several milliseconds a row, more than examining the file."""
        table = RECORDINGS  # short name for the statements below
        ids = [o.recording_id for o in outcomes]
        shapes: dict[tuple[str, ...], list[dict[str, object]]] = {}
        for outcome in outcomes:
            if outcome.values:
                shape = tuple(sorted(outcome.values))
                shapes.setdefault(shape, []).append({"rid": outcome.recording_id, **outcome.values})
        retried = [o.recording_id for o in outcomes if o.attempt]
        async with self.db.transaction() as session:
            for shape, params in shapes.items():
                statement = (
                    update(table)
                    .where(table.c.id == bindparam("rid"))
                    .values({name: bindparam(name) for name in shape})
                )
                await session.execute(statement, params)
            if retried:
                await session.execute(
                    update(table)
                    .where(table.c.id.in_(retried))
                    .values(attempts=table.c.attempts + 1)
                )
            await session.execute(
                update(table)
                .where(table.c.id.in_(ids), table.c.claimed_by == self.node)
                .values(claimed_by=None, claimed_at=None)
            )
            found = await session.scalars(
                select(Recording)
                .where(Recording.id.in_(ids))
                .execution_options(populate_existing=True)
            )
            rows = {row.id: row for row in found}
        return {o.key: rows[o.recording_id] if o.values is not None else None for o in outcomes}

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
        metas: list[CallMeta] = []
        for path in await asyncio.to_thread(_spool_files, spool):
            meta = await find_call(path) if find_call else None
            if meta is None and not orphans:
                continue
            metas.append(meta or CallMeta.from_file(path, server))
        return await self._ingest_backlog(metas)

    async def _ingest_backlog(self, metas: list[CallMeta]) -> int:
        """Ingest in batches; the number that ended complete. Logs progress on big backlogs."""
        done = 0
        for start in range(0, len(metas), BATCH):
            rows = await self.ingest_many(metas[start : start + BATCH], rescan=True)
            done += sum(row is not None and row.state == RecordingState.COMPLETE for row in rows)
            if len(metas) > BATCH:
                log.info("recordings backlog: %d of %d files", start + len(rows), len(metas))
        return done

    async def retry_pending(self) -> int:
        """Pending rows with a reason (full disk, a crash half-way): try them again."""
        async with self.db.transaction() as session:
            rows = (
                await session.scalars(
                    select(Recording).where(Recording.state == RecordingState.PENDING.value)
                )
            ).all()
        metas = [
            CallMeta(
                source=Path(row.source_path),
                server=row.server,
                **{name: getattr(row, name) for name in LINK_FIELDS},
            )
            for row in rows
        ]
        return await self._ingest_backlog(metas)
