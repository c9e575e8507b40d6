"""Ingest: wait until MixMonitor has closed the file, check it, hash it, measure it, move it
into managed storage, transcode the Opus copy and index it, exactly once per file.

The row is written first (state pending, planned location), so a crash anywhere leaves
something a later pass can finish: the source still in the spool, or already moved.
Truncated or corrupt files go to quarantine with an ALERT log line and are never complete.
A full disk leaves the row pending with the reason, logs it and is retried.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from crm_core.db import Database, is_integrity_error
from crm_core.events import CallRecordingFinished
from recordings.errors import DiskFull
from recordings.examine import ClaimsReady, Examined, FileExaminer, Moved
from recordings.ingest_rows import LINK_FIELDS, Claim, IngestRows, Outcome
from recordings.meta import CallMeta, HostPath
from recordings.models import Recording, RecordingState
from recordings.storage import Storage
from recordings.transcode import to_opus, transcoder
from recordings.wavfile import Header, HeaderState, inspect_header

log = logging.getLogger(__name__)
# Queued files claimed in one transaction, and their results written in one more. Writing
# part-way through a batch paid off while files were examined one thread trip at a time;
# with lanes the results come faster than a commit, and each extra commit only lengthened
# the tail (4 commits took 43 ms after the last file of 40, one takes under 10).
BATCH = 64
FLUSH_EVERY = BATCH
FindCall = Callable[[Path], Awaitable[CallMeta | None]]
# key -> (row id, its state after this ingest), or None where another node holds the file
Results = dict[str, tuple[int, str] | None]


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
        self.rows = IngestRows(db, self.node)
        self.examiner = FileExaminer(storage, settle_seconds)
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
                await self._ingest_batch(batch)
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
        """Each file's row (None where another node holds it), in the order given."""
        results = await self._ingest_batch(metas, rescan=rescan)
        rows = await self.rows.load(found[0] for found in results.values() if found)
        return [rows[found[0]] if (found := results[m.key]) else None for m in metas]

    async def _ingest_batch(self, metas: list[CallMeta], *, rescan: bool = False) -> Results:
        """One transaction claims every row with its lease while the lanes already read and
        hash the files (recordings/examine.py); finished results are committed together, and
        each result gives its lease back in the same transaction."""
        unique = {meta.key: meta for meta in metas}
        if not unique:
            return {}
        async with contextlib.AsyncExitStack() as stack:
            for key in sorted(unique):  # a fixed order: overlapping batches cannot deadlock
                await stack.enter_async_context(self._file_lock(key))
            claims_ready: ClaimsReady = concurrent.futures.Future()
            examining = asyncio.create_task(
                self._process_all(list(unique.values()), claims_ready, rescan)
            )
            try:
                claims = await self._claim(list(unique.values()))
            except BaseException:
                claims_ready.cancel()  # the lanes stop; nothing was claimed
                await asyncio.gather(examining, return_exceptions=True)
                raise
            claims_ready.set_result(claims)
            results: Results = {
                key: (claim.id, claim.state) if claim.done else None
                for key, claim in claims.items()
                if claim.done or not claim.leased  # None: another node or run is on it
            }
            results.update(await examining)
        return results

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

    async def _claim(self, metas: list[CallMeta]) -> dict[str, Claim]:
        for _ in range(2):
            try:
                return await self.rows.claim(metas)
            except Exception as exc:
                if not is_integrity_error(exc):
                    raise  # otherwise another worker or node claimed one first: read theirs
        raise RuntimeError(f"could not claim {[meta.key for meta in metas]}")

    async def _process_all(
        self, metas: list[CallMeta], claims_ready: ClaimsReady, rescan: bool
    ) -> Results:
        """Examine the files in `self.parallel` lanes (recordings/examine.py) and commit
        results in groups: whoever takes the commit lock writes everything finished so far."""
        results: Results = {}
        finished: list[Outcome] = []
        commit = asyncio.Lock()
        tasks: list[asyncio.Task[None]] = []

        async def flush(force: bool = False) -> None:
            # Every FLUSH_EVERY results, or at the end: a commit costs more than examining
            # a file, and a live call's batch of one is still written at once.
            if not force and len(finished) < FLUSH_EVERY:
                return
            async with commit:
                while finished:
                    batch = finished[:]
                    finished.clear()
                    await self.rows.write(batch)
                    results.update({o.key: _result(o) for o in batch})

        async def finish(claim: Claim, meta: CallMeta, examined: Examined) -> None:
            try:
                if isinstance(examined, BaseException):
                    raise examined
                finished.append(await self._finish(claim, meta, examined, rescan))
            except FileNotFoundError:  # moved under us by a run whose lease we outlived
                finished.append(Outcome(claim.source_path, claim.id, None))
            except BaseException:
                finished.append(Outcome(claim.source_path, claim.id, None))  # lease goes back
                raise
            await flush()

        def deliver(claim: Claim, meta: CallMeta, examined: Examined) -> None:
            delivered.add(claim.id)
            tasks.append(asyncio.create_task(finish(claim, meta, examined)))

        delivered: set[int] = set()
        try:
            await self.examiner.run_lanes(metas, claims_ready, self.parallel, deliver)
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        finally:  # also on shutdown: the rest, and the leases of files not finished
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            # A file a lane was still on may yet be moved; its row stays pending, and the
            # next try finds it in storage.
            finished.extend(
                Outcome(claim.source_path, claim.id, None)
                for claim in _claimed(claims_ready)
                if claim.leased and not claim.done and claim.id not in delivered
            )
            await asyncio.shield(flush(force=True))
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return results

    async def _finish(
        self, claim: Claim, meta: CallMeta, examined: Outcome | Moved | None, rescan: bool
    ) -> Outcome:
        """A lane's result made an outcome: a file still being written is watched here until
        it settles, a moved file gets its Opus copy, a full disk is retried later."""
        try:
            if examined is None:
                examined = await self._watch_and_examine(claim, meta, rescan)
            if isinstance(examined, Outcome):
                return examined
            assert claim.wav_path is not None
            opus, note = await self._opus(claim.wav_path)
        except DiskFull as exc:
            log.error("ALERT recordings disk full, will retry %s: %s", meta.source.name, exc)
            return Outcome(claim.source_path, claim.id, {"error": f"disk full: {exc}"[:300]}, True)
        return Outcome(claim.source_path, claim.id, _complete(examined, opus, note))

    async def _watch_and_examine(
        self, claim: Claim, meta: CallMeta, rescan: bool
    ) -> Outcome | Moved:
        current = await asyncio.to_thread(self.examiner.current, claim, meta)
        if current is None:
            return Outcome(claim.source_path, claim.id, {"error": "file missing"})
        header = await self._settled_header(current, rescan)
        if header is None:
            return Outcome(claim.source_path, claim.id, {"error": "still being written"})
        return await asyncio.to_thread(self.examiner.examine, claim, current, header)

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
            batch = metas[start : start + BATCH]
            results = await self._ingest_batch(batch, rescan=True)
            done += sum(bool(r and r[1] == RecordingState.COMPLETE) for r in results.values())
            if len(metas) > BATCH:
                log.info("recordings backlog: %d of %d files", start + len(batch), len(metas))
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


def _claimed(claims_ready: ClaimsReady) -> list[Claim]:
    """The batch's claims, if the claim transaction got that far."""
    if not claims_ready.done() or claims_ready.cancelled() or claims_ready.exception():
        return []
    return list(claims_ready.result().values())


def _result(outcome: Outcome) -> tuple[int, str] | None:
    """What an outcome leaves the row as; None where there was nothing to write."""
    if outcome.values is None:
        return None
    state = outcome.values.get("state", RecordingState.PENDING.value)
    return outcome.recording_id, str(state)


def _complete(moved: Moved, opus: str | None, note: str | None) -> dict[str, object]:
    facts = moved.facts
    return {
        "state": RecordingState.COMPLETE.value,
        "error": note,
        "opus_path": opus,
        "sha256": facts.sha256,
        "size_bytes": facts.size_bytes,
        "duration_seconds": facts.duration_seconds,
        "rms": facts.rms,
        "peaks": moved.peaks_json,  # already JSON: see IngestRows.write
        "ingested_at": datetime.now(UTC),
    }
