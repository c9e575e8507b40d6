"""A dependency-free progress bar for long CLI work (seed, backup).

On a terminal it redraws one line; in a log (CI, pipes) it prints a line every 10 %.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(
        self, label: str, total: int, unit: str = "", stream: TextIO | None = None
    ) -> None:
        self.label, self.total, self.unit = label, max(total, 1), unit
        self.stream = stream or sys.stderr
        self.done = 0
        self.started = time.monotonic()
        self._tty = self.stream.isatty()
        self._last_decile = -1
        self._last_draw = 0.0

    def update(self, amount: int) -> None:
        self.done = min(self.done + amount, self.total)
        now = time.monotonic()
        decile = self.done * 10 // self.total
        if self._tty and (now - self._last_draw > 0.1 or self.done == self.total):
            self._last_draw = now
            self.stream.write("\r" + self._line(now))
            self.stream.flush()
        elif not self._tty and decile != self._last_decile:
            self._last_decile = decile
            self.stream.write(self._line(now) + "\n")
            self.stream.flush()

    def _line(self, now: float) -> str:
        frac = self.done / self.total
        bar = "#" * int(frac * 30)
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        return (
            f"{self.label} [{bar:<30}] {frac:6.1%} {self.done:,}/{self.total:,}{self.unit} "
            f"{elapsed:5.1f}s elapsed, ~{eta:4.0f}s left"
        )

    def finish(self) -> float:
        elapsed = time.monotonic() - self.started
        if self._tty:
            self.stream.write("\n")
        self.stream.flush()
        return elapsed
