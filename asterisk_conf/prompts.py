"""Mandarin voice prompts, spoken by espeak-ng and converted by sox to 8 kHz mono WAV.

Debian's Asterisk sound packages carry no Chinese, so the prompts are made at install time.
Each prompt is regenerated only when its text changes (a sidecar file holds the text), so a
second install writes nothing.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from asterisk_conf.errors import PbxInstallFailed
from asterisk_conf.render import QueueRow
from crm_core.business_hours import describe
from crm_core.errors import ValidationError

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
    # Closed hours, overflow and voicemail (the hotline-closed/-voicemail dialplan contexts)
    "closed": "您好，现在是非工作时间。",
    "closed-holiday": "您好，今天是法定节假日，人工服务暂停。",
    "closed-closure": "因特殊情况，人工服务暂停。",
    "voicemail": "请在提示音后留言，说明您的姓名和问题，我们会尽快给您回电。",
    "voicemail-thanks": "留言已收到，谢谢，再见。",
    # Queue callback (hotline-queue-keys, hotline-callback)
    "callback-offer": "如需保留排队位置并挂机等待回电，请按一。",
    "callback-ok": "已为您保留排队位置，轮到您时我们会给您回电，请挂机。",
    "callback-failed": "抱歉，暂时无法登记回电，请继续等候。",
    "callback-noanswer": "客户未接听，系统将稍后再次回电。",
    # Position and expected wait, said by app_queue (queues.conf names these files)
    "queue-youarenext": "您是下一位，请稍候。",
    "queue-thereare": "您前面还有",
    "queue-callswaiting": "位客户在等候。",
    "queue-holdtime": "预计等待时间大约",
    "queue-minutes": "分钟。",
    "queue-seconds": "秒。",
    "queue-less-than": "少于",
    "queue-thankyou": "感谢您的耐心等候。",
}

# app_queue says positions and minutes with the Chinese number rules of say.c, which play
# sounds/<language>/digits/<n>; Debian has no Mandarin digits, so they are spoken here too.
DIGITS: dict[str, str] = {
    **{str(n): "零一二三四五六七八九十"[n] for n in range(11)},
    **{str(n): "十" + "一二三四五六七八九"[n - 11] for n in range(11, 20)},
    **{str(n * 10): "二三四五六七八九"[n - 2] + "十" for n in range(2, 10)},
    "hundred": "百",
    "thousand": "千",
    "10000": "万",
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


def _beep(target: Path) -> None:
    command = ["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(target)]
    done = subprocess.run(
        [*command, "synth", "0.4", "sine", "1000", "vol", "0.5"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise PbxInstallFailed(f"making the beep failed: {done.stderr.strip()}")


def hours_prompt_name(queue: str) -> str:
    return f"hours-{queue}"


def hours_sentence(description: str) -> str:
    return f"我们的人工服务时间是{description}。"


def ensure_prompts(
    directory: Path,
    report: Callable[[str], None],
    texts: dict[str, str] | None = None,
) -> int:
    """Make missing or outdated prompts (every built-in one, or `texts`); return how many
    were written. The digits go to the language directory's digits/ beside ours."""
    if texts is None:
        written = ensure_prompts(directory, report, PROMPTS)
        written += ensure_prompts(directory.parent / "digits", report, DIGITS)
        if not (directory / "beep.wav").is_file():
            directory.mkdir(parents=True, exist_ok=True)
            _beep(directory / "beep.wav")
            written += 1
        return written
    directory.mkdir(parents=True, exist_ok=True)
    written = 0
    for name, text in texts.items():
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


def hours_texts(queues: Iterable[QueueRow]) -> dict[str, str]:
    """The closed-hours sentence of every queue with opening hours (hotline/hours-<queue>)."""
    texts = {}
    for queue in queues:
        if queue.hours:
            try:
                texts[hours_prompt_name(queue.name)] = hours_sentence(describe(queue.hours))
            except ValidationError:
                continue  # saved before validation existed; the generic prompt plays
    return texts
