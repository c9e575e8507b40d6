"""The Opus streaming copy (pydub + Debian's ffmpeg). Blocking: callers run it in a thread."""

from __future__ import annotations

import errno
import os
import warnings
from pathlib import Path
from typing import Any

from recordings.errors import DiskFull

OPUS_BITRATE = "24k"


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
