"""Read recorded AMI transcripts (raw bytes, CRLF) into simple events for replay tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"


@dataclass(frozen=True)
class ReplayEvent:
    name: str
    headers: dict[str, str]


def load(name: str) -> list[ReplayEvent]:
    text = (FIXTURES / f"{name}.txt").read_bytes().decode("utf-8")
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        headers: dict[str, str] = {}
        for line in block.split("\n"):
            key, sep, value = line.partition(": ")
            if sep:
                headers.setdefault(key, value)
        if "Event" in headers:
            events.append(ReplayEvent(headers["Event"], headers))
    return events


TRANSCRIPTS = sorted(p.stem for p in FIXTURES.glob("*.txt"))
