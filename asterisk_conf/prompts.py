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
    # IVR self-service (cti/agi_handlers.py and the hotline-menu dialplan context)
    "menu": "自助服务：确认身份请按一，查询服务单进度请按二，人工服务请稍候。",
    "identify": "请输入车架号后六位数字，或服务单号，以井号键结束。",
    "identify-retry": "没有找到对应的记录，请重新输入，以井号键结束。",
    "identify-ok": "已确认您的身份，谢谢。",
    "identify-failed": "抱歉，没有找到记录，正在为您转接人工服务。",
    "status-need-id": "未能确认您的身份，请稍候由坐席为您查询。",
    "status-none": "您目前没有未完成的服务单。",
    "status-unavailable": "暂时无法查询服务单进度，请稍候由坐席为您解答。",
    "status-open": "您有一张服务单正在处理中，坐席可为您详细说明。",
    # Sentences a ticketing status_for() may return; each is played from its own prompt.
    "status-received": "您的服务单已受理，正在处理中。",
    "status-review": "您的服务单正在技术审核中。",
    "status-dispatched": "您的服务单已派工，服务工程师将尽快与您联系。",
    "status-parts": "您的服务单正在等待配件。",
    "survey-score": "请为本次服务打分，非常满意请按五，非常不满意请按一。",
    "survey-retry": "输入有误。请按一到五之间的数字键为本次服务打分。",
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
