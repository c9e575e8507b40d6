"""What a MixMonitor WAV looks like on disk: is it finished, truncated or corrupt, and its
facts (sha256, duration, RMS, waveform peaks).

MixMonitor writes a 44-byte header with zero sizes when it opens the file and fills the sizes
in when it closes it, so "the header's sizes match the file" is the finished signal; a header
that promises more data than the file holds is a truncation.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import io
import mmap
import os
import struct
import time
import wave
from dataclasses import dataclass
from pathlib import Path

try:
    from recordings import _pcm
except ImportError as exc:  # a checkout that was never installed, or was `git clean`ed
    raise ImportError(
        f"recordings._pcm (recordings/_pcm.c) is not built: run `make install` ({exc})"
    ) from exc

PEAK_BUCKETS = 600
READ_ONCE_BYTES = 64 << 20


class HeaderState(enum.StrEnum):
    FINISHED = "finished"
    OPEN = "open"  # sizes not written yet: still recording, or the writer died
    TRUNCATED = "truncated"
    CORRUPT = "corrupt"


@dataclass(frozen=True)
class Header:
    state: HeaderState
    reason: str = ""
    data_offset: int = 0
    data_size: int = 0
    file_size: int = 0
    age_seconds: float = 0.0  # since the file was last written (mtime)


def _walk_chunks(head: bytes, file_size: int) -> Header:
    offset = 12
    while offset + 8 <= len(head):
        chunk_id, size = struct.unpack_from("<4sI", head, offset)
        body = offset + 8
        if chunk_id == b"data":
            if size == 0 or size == 0xFFFFFFFF:
                return Header(HeaderState.OPEN, "data size not written", body, 0, file_size)
            if body + size > file_size:
                missing = body + size - file_size
                return Header(
                    HeaderState.TRUNCATED, f"{missing} bytes missing", body, size, file_size
                )
            return Header(HeaderState.FINISHED, "", body, size, file_size)
        offset = body + size + (size & 1)
    return Header(HeaderState.CORRUPT, "no data chunk", file_size=file_size)


def inspect_header(path: Path) -> Header:
    stat = path.stat()
    with path.open("rb") as handle:
        head = handle.read(4096)
    return dataclasses.replace(
        _classify(head, stat.st_size), age_seconds=time.time() - stat.st_mtime
    )


def _classify(head: bytes, file_size: int) -> Header:
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        if file_size == 0:
            return Header(HeaderState.OPEN, "empty file", file_size=0)
        return Header(HeaderState.CORRUPT, "not a RIFF/WAVE file", file_size=file_size)
    return _walk_chunks(head, file_size)


@dataclass(frozen=True)
class WavFacts:
    sha256: str
    size_bytes: int
    duration_seconds: float
    sample_rate: int
    rms: float
    peaks: list[int]


def _pcm_format(source: Path | bytes) -> tuple[int, int, float]:
    """(sample rate, frames, seconds) from stdlib wave, given the file or its bytes up to its
    data chunk; raises wave.Error on nonsense."""
    with wave.open(str(source) if isinstance(source, Path) else io.BytesIO(source), "rb") as wav:
        if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            raise wave.Error("expected 16-bit mono PCM")
        rate, frames = wav.getframerate(), wav.getnframes()
    return rate, frames, frames / rate if rate else 0.0


class Scratch:
    """A buffer one thread reuses from file to file. A new 2 MB buffer per file is a new
    memory map whose page faults two threads take turns at (the process's memory-map lock):
    with fresh buffers, two ingest threads were no faster than one."""

    def __init__(self) -> None:
        self.data = bytearray()

    def read(self, path: Path, size: int) -> memoryview:
        """The file's first `size` bytes (fewer if it is shorter)."""
        with path.open("rb", buffering=0) as handle:
            return self._read_from(handle, size)

    def _read_from(self, handle: io.FileIO, size: int) -> memoryview:
        if len(self.data) < size:
            self.data = bytearray(size)  # a new one: views of the old may still be alive
        view = memoryview(self.data)[:size]
        got = 0
        while got < size and (n := handle.readinto(view[got:])):
            got += n
        return view[:got]

    def read_settled(self, path: Path, settle: float) -> tuple[Header, memoryview] | None:
        """A file not written to for `settle` seconds, read whole with its header, in one
        open. None for one written to more recently, or too long to hold (READ_ONCE_BYTES):
        look at those with inspect_header and wav_facts. One open, where inspect_header,
        wave and the read each opened the file: every system call gives the GIL up, and
        getting it back waits for whoever holds it."""
        with path.open("rb", buffering=0) as handle:
            stat = os.fstat(handle.fileno())
            age = time.time() - stat.st_mtime
            if age < settle or stat.st_size > READ_ONCE_BYTES:
                return None
            data = self._read_from(handle, stat.st_size)
        header = _classify(bytes(data[:4096]), stat.st_size)
        return dataclasses.replace(header, age_seconds=age), data


def _rms_and_peaks(samples: memoryview, buckets: int) -> tuple[float, list[int]]:
    """RMS and waveform peaks of 16-bit little-endian samples, in one pass in C
    (recordings/_pcm.c says why). The sum of squares is an exact integer."""
    squares, peaks = _pcm.measure(samples, buckets)
    total = len(samples) // 2
    return ((squares / total) ** 0.5 if total else 0.0), peaks


def wav_facts(
    path: Path, header: Header, buckets: int = PEAK_BUCKETS, scratch: Scratch | None = None
) -> WavFacts:
    """Blocking (run it in a thread). Calls up to READ_ONCE_BYTES (~70 min) are read into
    memory once for the hash and the samples: two ingest threads then really run side by
    side, where faulting in a memory map kept them waiting on each other. Longer files are
    hashed in chunks and mapped, so memory stays bounded. A thread that examines many files
    passes its own `scratch`, reused from file to file."""
    if header.file_size <= READ_ONCE_BYTES:
        scratch = scratch or Scratch()
        return facts_of_bytes(scratch.read(path, header.file_size), header, buckets)
    rate, frames, seconds = _pcm_format(path)
    count = min(frames, header.data_size // 2)
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
        start = header.data_offset  # a file this long is never empty, so it can be mapped
        with (
            mmap.mmap(handle.fileno(), 0, prot=mmap.PROT_READ) as mapped,
            memoryview(mapped)[start : start + 2 * count] as samples,
        ):
            rms, peaks = _rms_and_peaks(samples, buckets)
    return WavFacts(digest, header.file_size, round(seconds, 3), rate, round(rms, 2), peaks)


def facts_of_bytes(data: memoryview, header: Header, buckets: int = PEAK_BUCKETS) -> WavFacts:
    """`wav_facts` of a file already read whole (`Scratch.read_settled`)."""
    rate, frames, seconds = _pcm_format(bytes(data[: header.data_offset]))
    count = min(frames, header.data_size // 2)
    digest = hashlib.sha256(data).hexdigest()
    start = header.data_offset
    rms, peaks = _rms_and_peaks(data[start : start + 2 * count], buckets)
    return WavFacts(digest, header.file_size, round(seconds, 3), rate, round(rms, 2), peaks)
