"""The blocking half of an ingest: look at a file, hash and measure it, move it into managed
storage or quarantine. Run in threads; nothing here touches the database or the event loop.

Files are examined in lanes: each lane is one thread that takes files back to back and hands
each result to the event loop as it is done. A thread that came back to the loop after every
file waited for the loop each time (the loop was busy writing rows), and under the GIL that
wait was longer than examining the file: with lanes, the examining never waits for the loop.
The lanes start while the batch's claim transaction is still running: reading and hashing
need no lease, only the move does, so the claim costs no time of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
import wave
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from recordings.ingest_rows import Claim, Outcome
from recordings.meta import CallMeta
from recordings.models import RecordingState
from recordings.storage import Storage
from recordings.wavfile import (
    Header,
    HeaderState,
    Scratch,
    WavFacts,
    facts_of_bytes,
    inspect_header,
    wav_facts,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Moved:
    """A finished file, measured and in managed storage; its row is not written yet."""

    facts: WavFacts
    # The peaks as the JSON the row stores, encoded here in the lane: in the batch's one
    # write on the event loop, encoding them was a third of that write's time.
    peaks_json: str


# What examining one file gave: its outcome, a moved file, None for a file that needs
# watching until it settles (the event loop's job), or what it raised.
Examined = Outcome | Moved | None | BaseException
Deliver = Callable[[Claim, CallMeta, Examined], None]
# The claim transaction's result, set on the event loop, waited for in the lanes.
ClaimsReady = concurrent.futures.Future[dict[str, Claim]]
# A file read before the claim was in: where it was, and its facts or why it is broken;
# None for one left to the steps after the claim.
Early = tuple[Path, WavFacts | str] | None


class FileExaminer:
    def __init__(self, storage: Storage, settle_seconds: float) -> None:
        self.storage = storage
        self.settle = settle_seconds

    def current(self, claim: Claim, meta: CallMeta) -> Path | None:
        """Where the file is now: still in the spool, or already moved by an earlier try."""
        assert claim.wav_path is not None
        for place in (meta.source, self.storage.path(claim.wav_path)):
            if place.exists():
                return place
        return None

    def examine_if_settled(
        self, claim: Claim, meta: CallMeta, scratch: Scratch | None = None
    ) -> Outcome | Moved | None:
        """A file nobody has written to for the settle time (a backlog, a re-scan) is
        examined at once; None for one that must be watched until it settles."""
        current = self.current(claim, meta)
        if current is None:
            return Outcome(claim.source_path, claim.id, {"error": "file missing"})
        header = inspect_header(current)
        if not self._settled(header):
            return None
        return self.examine(claim, current, header, scratch)

    def examine(
        self, claim: Claim, current: Path, header: Header, scratch: Scratch | None = None
    ) -> Outcome | Moved:
        """A settled file: quarantined if broken, else measured and moved into storage.
        Raises DiskFull when the move finds no room (the source is left where it was)."""
        facts = _measure(header, lambda: wav_facts(current, header, scratch=scratch))
        return self._place(claim, current, facts)

    def _settled(self, header: Header) -> bool:
        return header.state is not HeaderState.OPEN and header.age_seconds >= self.settle

    def _place(self, claim: Claim, current: Path, measured: WavFacts | str) -> Outcome | Moved:
        """Measured: moved into storage. A reason instead: quarantined."""
        assert claim.wav_path is not None
        if isinstance(measured, str):
            return self.quarantine(claim, current, measured)
        self.storage.move_in(current, claim.wav_path)
        return Moved(measured, json.dumps(measured.peaks))

    def quarantine(self, claim: Claim, path: Path, reason: str) -> Outcome:
        target = self.storage.quarantine_name(path.name)
        self.storage.move_in(path, target)
        log.error("ALERT recording quarantined: %s (%s) -> %s", path.name, reason, target)
        values = {
            "state": RecordingState.QUARANTINED.value,
            "wav_path": target,
            "error": reason[:300],
        }
        return Outcome(claim.source_path, claim.id, values)

    def _measure_early(self, meta: CallMeta, scratch: Scratch) -> Early:
        """Before the claim is in: the spool file's facts (or why it is broken), if it has
        settled. Only reads, so it is harmless if the file turns out not to be ours. None:
        leave it to the steps after the claim (not in the spool, not settled, unreadable)."""
        try:
            read = scratch.read_settled(meta.source, self.settle)
            if read is None or not self._settled(read[0]):
                return None
            header, data = read
            return meta.source, _measure(header, lambda: facts_of_bytes(data, header))
        except Exception:  # tried again after the claim, where a failure is reported
            return None

    def _finish_file(
        self, meta: CallMeta, early: Early, claims: dict[str, Claim], scratch: Scratch
    ) -> tuple[Claim, Examined] | None:
        """Once the claim is in: move (or quarantine) a file of ours; None if not ours."""
        claim = claims.get(meta.key)
        if claim is None or claim.done or not claim.leased:
            return None  # not ours to finish: done already, or another node has it
        result: Examined
        try:
            if early is not None:
                result = self._place(claim, *early)
            else:
                result = self.examine_if_settled(claim, meta, scratch)
        except BaseException as exc:  # handed to the loop, which decides
            result = exc
        return claim, result

    async def run_lanes(
        self, metas: list[CallMeta], claims: ClaimsReady, lanes: int, deliver: Deliver
    ) -> None:
        """Examine `metas` in `lanes` threads while the claim transaction runs: each file is
        read, hashed and measured at once, and moved only once `claims` says it is ours
        (until then a lane goes on to its next file). `deliver` runs on the calling loop for
        each file of ours, in the order that lane finished them. If this is cancelled (or
        the claim fails), the lanes stop taking files and nothing more is delivered; a file
        a lane was in the middle of is finished there and picked up again by a later ingest
        (its row is still pending)."""
        loop = asyncio.get_running_loop()
        todo = deque(metas)
        stopped = threading.Event()

        def on_loop(claim: Claim, meta: CallMeta, result: Examined) -> None:
            if not stopped.is_set():
                deliver(claim, meta, result)

        def lane() -> None:
            scratch = Scratch()  # this lane's buffers, reused for each of its files
            measured: deque[tuple[CallMeta, Early]] = deque()  # read before the claim was in
            while not stopped.is_set() and (todo or measured):
                if todo and not (claims.done() and measured):
                    try:
                        meta = todo.popleft()  # atomic: lanes never take the same file
                    except IndexError:
                        continue
                    measured.append((meta, self._measure_early(meta, scratch)))
                    if not claims.done():
                        continue
                meta, early = measured.popleft()
                try:
                    finished = self._finish_file(meta, early, claims.result(), scratch)
                except BaseException:  # the claim failed or was cancelled: stop
                    return
                if finished is not None:
                    loop.call_soon_threadsafe(on_loop, finished[0], meta, finished[1])

        try:
            await asyncio.gather(*(asyncio.to_thread(lane) for _ in range(max(1, lanes))))
        finally:
            stopped.set()
            claims.cancel()  # a lane still waiting for the claim wakes up and stops


def _measure(header: Header, facts: Callable[[], WavFacts]) -> WavFacts | str:
    """The file's facts, or why it goes to quarantine."""
    if header.state is not HeaderState.FINISHED:
        return f"{header.state}: {header.reason}"
    try:
        return facts()
    except (wave.Error, EOFError, ValueError) as exc:
        return f"corrupt: {exc}"
