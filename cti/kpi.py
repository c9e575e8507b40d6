"""Call-center KPIs: the raw sums of a set of calls and the figures derived from them.

The formulas are written down in docs/kpis.md; the SQL is cti/kpi_sql.py. A Tally holds only
sums and a maximum, so tallies of groups add up to the tally of their union (the totals row)
and every ratio is computed once, here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncConnection

import cti.kpi_sql as kpi_sql
from crm_core.db import Database

SHANGHAI = timedelta(hours=8)  # the hotline's day starts at 00:00 Beijing time


def _ratio(part: float, whole: float, scale: float = 1.0) -> float | None:
    return round(scale * part / whole, 1 if scale == 100.0 else 2) if whole else None


@dataclass(frozen=True)
class Tally:
    """What one group of calls adds up to (the labels of kpi_sql.tally_columns)."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    answered_within_sl: int = 0
    callback_exits: int = 0
    voicemails: int = 0
    overflowed: int = 0
    answer_wait: float = 0.0
    abandon_wait: float = 0.0
    longest_wait: float | None = None
    talk: float = 0.0
    hold: float = 0.0
    wrapup: float = 0.0
    surveyed: int = 0
    survey_total: int = 0

    @classmethod
    def of_group(cls, row: Any) -> Tally:
        """The tally of one (key, kind, disposition) row of kpi_sql.group_query."""
        kind, n, wait = row.kind, int(row.n), float(row.wait or 0.0)
        answered = kind in ("answered_in_sl", "answered")
        offered = kind != "short"

        def only(condition: bool, value: float) -> float:
            return value if condition else 0.0

        return cls(
            offered=n if offered else 0,
            answered=n if answered else 0,
            abandoned=n if kind == "abandoned" else 0,
            short_abandoned=n if kind == "short" else 0,
            answered_within_sl=n if kind == "answered_in_sl" else 0,
            callback_exits=n if kind == "callback" else 0,
            voicemails=n if kind == "voicemail" else 0,
            overflowed=int(row.overflowed or 0),
            answer_wait=only(answered, wait),
            abandon_wait=only(kind == "abandoned", wait),
            longest_wait=float(row.longest_wait) if offered else None,
            talk=only(answered, float(row.talk or 0.0)),
            hold=only(answered, float(row.hold or 0.0)),
            wrapup=only(answered, float(row.wrapup or 0.0)),
            surveyed=int(row.surveyed or 0),
            survey_total=int(row.survey_total or 0),
        )

    def __add__(self, other: Tally) -> Tally:
        values: dict[str, Any] = {}
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if f.name == "longest_wait":
                present = [w for w in (mine, theirs) if w is not None]
                values[f.name] = max(present) if present else None
            else:
                values[f.name] = mine + theirs
        return Tally(**values)

    @property
    def service_level(self) -> float | None:
        return _ratio(self.answered_within_sl, self.offered, 100.0)

    @property
    def abandon_rate(self) -> float | None:
        return _ratio(self.abandoned, self.offered, 100.0)

    @property
    def answer_rate(self) -> float | None:
        return _ratio(self.answered, self.offered, 100.0)

    @property
    def asa(self) -> float | None:
        return _ratio(self.answer_wait, self.answered)

    @property
    def average_abandon_time(self) -> float | None:
        return _ratio(self.abandon_wait, self.abandoned)

    @property
    def aht(self) -> float | None:
        return _ratio(self.talk + self.hold + self.wrapup, self.answered)

    @property
    def survey_average(self) -> float | None:
        return _ratio(self.survey_total, self.surveyed)

    def figures(self) -> dict[str, Any]:
        """The raw sums plus every derived KPI, as one flat dict (API, CSV, XLSX)."""
        derived = {
            "service_level": self.service_level,
            "abandon_rate": self.abandon_rate,
            "answer_rate": self.answer_rate,
            "asa": self.asa,
            "aht": self.aht,
            "average_abandon_time": self.average_abandon_time,
            "survey_average": self.survey_average,
        }
        raw = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**raw, **derived}


@dataclass(frozen=True)
class QueueToday:
    """One queue's figures since 00:00 Beijing time, for the wallboard."""

    queue: str
    offered: int
    answered: int
    abandoned: int
    service_level: float | None  # percent
    abandon_rate: float | None  # percent
    longest_wait: float | None  # seconds
    asa: float | None  # seconds


def start_of_day(now: datetime) -> datetime:
    """00:00 Beijing time of the day `now` (aware) falls in, as an aware UTC datetime."""
    local = now.astimezone(UTC) + SHANGHAI
    return local.replace(hour=0, minute=0, second=0, microsecond=0) - SHANGHAI


def group_key(value: Any) -> str:
    return "" if value is None else str(value)


async def thresholds(conn: AsyncConnection) -> kpi_sql.Thresholds:
    rows = (await conn.execute(kpi_sql.THRESHOLDS)).all()
    return {
        r.name: (
            kpi_sql.DEFAULT_SERVICE_LEVEL_SECONDS
            if r.service_level_seconds is None
            else r.service_level_seconds,
            kpi_sql.DEFAULT_SHORT_ABANDON_SECONDS
            if r.short_abandon_seconds is None
            else r.short_abandon_seconds,
        )
        for r in rows
    }


async def tallies(
    conn: AsyncConnection, key: kpi_sql.Key | None, where: list[ColumnElement[bool]]
) -> tuple[dict[str, Tally], dict[str, dict[str, int]]]:
    """Each group's tally and the dispositions of its answered calls, from one scan."""
    query = kpi_sql.group_query(key, await thresholds(conn), where)
    by_key: dict[str, Tally] = {}
    dispositions: dict[str, dict[str, int]] = defaultdict(dict)
    for row in (await conn.execute(query)).all():
        name = group_key(row.key)
        by_key[name] = by_key.get(name, Tally()) + Tally.of_group(row)
        if row.disposition is not None and row.kind in ("answered_in_sl", "answered"):
            codes = dispositions[name]
            codes[row.disposition] = codes.get(row.disposition, 0) + int(row.n)
    return by_key, dict(dispositions)


async def today_by_queue(db: Database, now: datetime) -> list[QueueToday]:
    """Each queue's calls that entered since 00:00 Beijing time of `now`, up to `now`."""
    where = kpi_sql.calls_in(start_of_day(now), now + timedelta(microseconds=1))
    async with db.connect() as conn:
        by_queue, _ = await tallies(conn, kpi_sql.call_key("", "queue"), where)
    return [
        QueueToday(
            queue=queue,
            offered=tally.offered,
            answered=tally.answered,
            abandoned=tally.abandoned,
            service_level=tally.service_level,
            abandon_rate=tally.abandon_rate,
            longest_wait=tally.longest_wait,
            asa=tally.asa,
        )
        for queue, tally in sorted(by_queue.items())
    ]
