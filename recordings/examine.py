"""The blocking half of an ingest: look at a file, hash and measure it, move it into managed
storage or quarantine. Run in threads; nothing here touches the database or the event loop.

Files are examined in lanes: each lane is one thread that takes files back to back and hands
each result to the event loop as it is done. A thread that came back to the loop after every
file waited for the loop each time (the loop was busy writing rows), and under the GIL that
wait was longer than examining the file: with lanes, the examining never waits for the loop.
"""

from __future__ import annotations

import asyncio
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
    inspect_header,
    wav_facts,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Moved:
    """A finished file, measured and in managed storage; its row is not written yet."""

    facts: WavFacts


# What examining one file gave: its outcome, a moved file, None for a file that needs
# watching until it settles (the event loop's job), or what it raised.
Examined = Outcome | Moved | None | BaseException
Deliver = Callable[[Claim, CallMeta, Examined], None]


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
        if header.state is HeaderState.OPEN or header.age_seconds < self.settle:
            return None
        return self.examine(claim, current, header, scratch)

    def examine(
        self, claim: Claim, current: Path, header: Header, scratch: Scratch | None = None
    ) -> Outcome | Moved:
        """A settled file: quarantined if broken, else measured and moved into storage.
        Raises DiskFull when the move finds no room (the source is left where it was)."""
        assert claim.wav_path is not None
        if header.state is not HeaderState.FINISHED:
            return self.quarantine(claim, current, f"{header.state}: {header.reason}")
        try:
            facts = wav_facts(current, header, scratch=scratch)
        except (wave.Error, EOFError, ValueError) as exc:
            return self.quarantine(claim, current, f"corrupt: {exc}")
        self.storage.move_in(current, claim.wav_path)
        return Moved(facts)

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

    async def run_lanes(
        self, work: list[tuple[Claim, CallMeta]], lanes: int, deliver: Deliver
    ) -> None:
        """Examine `work` in `lanes` threads; `deliver` runs on the calling loop for each
        file, in the order that lane finished them. If this is cancelled, the lanes stop
        taking files and nothing more is delivered; a file a lane was in the middle of is
        finished there and picked up again by a later ingest (its row is still pending)."""
        loop = asyncio.get_running_loop()
        todo = deque(work)
        stopped = threading.Event()

        def on_loop(claim: Claim, meta: CallMeta, result: Examined) -> None:
            if not stopped.is_set():
                deliver(claim, meta, result)

        def lane() -> None:
            scratch = Scratch()  # this lane's buffers, reused for each of its files
            while not stopped.is_set():
                try:
                    claim, meta = todo.popleft()  # atomic: lanes never take the same file
                except IndexError:
                    return
                result: Examined
                try:
                    result = self.examine_if_settled(claim, meta, scratch)
                except BaseException as exc:  # handed to the loop, which decides
                    result = exc
                loop.call_soon_threadsafe(on_loop, claim, meta, result)

        try:
            await asyncio.gather(*(asyncio.to_thread(lane) for _ in range(max(1, lanes))))
        finally:
            stopped.set()
