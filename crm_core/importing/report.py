"""Counts per outcome and the refused rows, written as a CSV that opens right in Excel."""

from __future__ import annotations

import csv
import enum
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class Outcome(enum.StrEnum):
    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DUPLICATE = "duplicate"
    INVALID = "invalid"


@dataclass(frozen=True)
class Problem:
    """Why one row was not written: where (row and column as Excel shows them) and why."""

    row: int
    column: str
    value: str
    reason: str
    outcome: Outcome = Outcome.INVALID


REPORT_HEADER = ("行号 row", "列 column", "值 value", "结果 outcome", "原因 reason")
MAX_KEPT = 100_000  # problems kept in memory; the counts stay exact beyond


@dataclass
class ImportReport:
    kind: str
    source: str
    dry_run: bool
    encoding: str = ""
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    batches: int = 0
    seconds: float = 0.0
    report_path: str | None = None

    def add(self, outcome: Outcome, problem: Problem | None = None) -> None:
        self.counts[outcome.value] += 1
        if problem is not None and len(self.problems) < MAX_KEPT:
            self.problems.append(problem)

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.source,
            "dry_run": self.dry_run,
            "encoding": self.encoding,
            "rows": self.rows,
            "counts": {o.value: self.counts[o.value] for o in Outcome},
            "warnings": self.warnings,
            "batches": self.batches,
            "seconds": round(self.seconds, 3),
            "report": self.report_path,
        }

    def write_csv(self, path: Path) -> Path:
        """UTF-8 with BOM: Excel (also in China) opens it with the right characters."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(REPORT_HEADER)
            for p in sorted(self.problems, key=lambda p: p.row):
                writer.writerow((p.row, p.column, _safe(p.value), p.outcome.value, p.reason))
        self.report_path = str(path)
        return path


def _safe(value: str) -> str:
    # A cell starting with = + - @ would run as a formula when the report is opened in Excel.
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value
