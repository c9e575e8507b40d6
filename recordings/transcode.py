"""The Opus streaming copy (pydub + Debian's ffmpeg). Blocking: callers run it in the
low-priority transcoder thread (`transcoder()`), so ffmpeg never competes with pops.
"""

from __future__ import annotations

import errno
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from recordings.errors import DiskFull

OPUS_BITRATE = "24k"
# ffmpeg took half a CPU per recording and drove the pop latency tail on the real PBX
# (bench/pop_latency_pbx.py): the streaming copy can wait, the agent's pop cannot.
TRANSCODE_NICE = 10


def _lower_priority() -> None:
    # On Linux a thread has its own nice value, and processes it starts inherit it: the
    # ffmpeg that pydub spawns from this thread runs at the lower priority too.
    # Relative to the server's own niceness: raising a priority would need privileges.
    thread = threading.get_native_id()
    current = os.getpriority(os.PRIO_PROCESS, thread)
    os.setpriority(os.PRIO_PROCESS, thread, min(19, current + TRANSCODE_NICE))


_shared: ThreadPoolExecutor | None = None
_shared_lock = threading.Lock()


def transcoder() -> ThreadPoolExecutor:
    """The process's one low-priority thread: one ffmpeg at a time, behind everything else."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="transcode", initializer=_lower_priority
            )
        return _shared


def _audio_segment() -> Any:
    # pydub imports the deprecated audioop and has old-style regex escapes; neither is ours
    # to fix, and the test suite treats warnings as errors.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", SyntaxWarning)
        from pydub import AudioSegment  # type: ignore[import-untyped]
    return AudioSegment


def to_opus(wav: Path, temporary: Path, final: Path) -> Path:
    """Write an Ogg Opus copy atomically (temporary file, then rename)."""
    segment = _audio_segment()
    try:
        # File objects, not names: given names, pydub leaves its handles open.
        with wav.open("rb") as source:
            audio = segment.from_wav(source)
        with temporary.open("wb") as target:
            audio.export(
                target,
                format="ogg",
                codec="libopus",
                bitrate=OPUS_BITRATE,
                parameters=["-application", "voip"],
            )
            target.flush()
            os.fsync(target.fileno())
        os.replace(temporary, final)
    except Exception as exc:
        # pydub reports ffmpeg failures as CouldntEncodeError with ffmpeg's stderr inside.
        full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
        if full or "No space left" in str(exc):
            raise DiskFull(f"no room for the Opus copy of {wav.name}: {exc}") from exc
        raise
    finally:
        temporary.unlink(missing_ok=True)
    return final
