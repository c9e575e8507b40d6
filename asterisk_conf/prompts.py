"""Mandarin voice prompts, spoken by espeak-ng and converted by sox to 8 kHz mono WAV.

Debian's Asterisk sound packages carry no Chinese, so the prompts are made at install time.
Each prompt is regenerated only when its text changes (a sidecar file holds the text), so a
second install writes nothing.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from asterisk_conf.errors import PbxInstallFailed

PROMPTS: dict[str, str] = {
    "welcome": "您好，欢迎致电服务热线。",
    "please-hold": "座席正忙，请您稍候。",
    "survey": "请对本次服务进行评价。满意请按一，一般请按二，不满意请按三。",
    "thanks": "感谢您的评价，再见。",
}


def _speak(text: str, target: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="hotline-prompt-") as tmp:
        raw = Path(tmp) / "raw.wav"
        steps = [
            ["espeak-ng", "-v", "cmn", "-s", "150", "-w", str(raw), text],
            ["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(target)],
        ]
        for command in steps:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise PbxInstallFailed(
                    f"making the prompt {target.name} failed: {' '.join(command[:3])}: "
                    f"{done.stderr.strip()}"
                )


def ensure_prompts(directory: Path, report: Callable[[str], None]) -> int:
    """Make missing or outdated prompts; return how many were written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = 0
    for name, text in PROMPTS.items():
        wav, sidecar = directory / f"{name}.wav", directory / f"{name}.txt"
        if wav.is_file() and sidecar.is_file() and sidecar.read_text(encoding="utf-8") == text:
            continue
        report(f"speaking prompt {name}")
        partial = directory / f".{name}.partial.wav"
        _speak(text, partial)
        partial.replace(wav)
        sidecar.write_text(text, encoding="utf-8")
        written += 1
    return written
