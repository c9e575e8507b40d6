"""The Opus transcode runs behind everything else: its thread, and the ffmpeg it starts,
have a lower priority than the server (pops must not wait for a streaming copy)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from rec_audio import write_wav

from recordings.transcode import TRANSCODE_NICE, to_opus, transcoder


def _niceness_of_a_child() -> int:
    # `nice` with no arguments prints the niceness it was started with.
    return int(subprocess.run(["nice"], capture_output=True, text=True, check=True).stdout)


def test_processes_started_by_the_transcoder_run_at_a_lower_priority() -> None:
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    child = transcoder().submit(_niceness_of_a_child).result(timeout=30)
    assert child == min(19, ours + TRANSCODE_NICE)
    assert _niceness_of_a_child() == ours  # the rest of the process is untouched


def test_the_transcoder_writes_a_playable_opus_copy(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "call.wav", seconds=2.0)
    final = tmp_path / "call.opus"
    transcoder().submit(to_opus, wav, tmp_path / ".call.part", final).result(timeout=60)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0",
         str(final)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert probe.stdout.strip() == "opus" and not (tmp_path / ".call.part").exists()
