"""KPI reports: a period's calls grouped by queue, agent, hour of day or day (docs/kpis.md).

A report is three grouped queries over the same filter: the call tally, the dispositions of
the answered calls and the callback jobs. Filters narrow by date range, queue, agent and
region; a region keeps its agents' calls and the calls no agent took (abandoned ones), the
same data scope as the call log (cti.call_queries.scoped).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

import cti.kpi as kpi
import cti.kpi_sql as kpi_sql
from crm_core.db import Database
from crm_core.errors import ValidationError
from crm_core.models import CallQueue, User
from cti.models import Call, QueueCallback

MAX_DAYS = 400


@dataclass(frozen=True)
class KpiFilter:
    """Which calls: entered in [start, end) (aware datetimes), optionally one queue, one
    agent, one region."""

    start: datetime
    end: datetime
    queue: str | None = None
    agent_id: int | None = None
    region: str | None = None

    def check(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValidationError("start and end must carry a time zone", field="start")
        if self.end <= self.start:
            raise ValidationError("end must be after start", field="end")
        if (self.end - self.start).days > MAX_DAYS:
            raise ValidationError(f"a report covers at most {MAX_DAYS} days", field="end")


@dataclass(frozen=True)
class KpiRow:
    key: str  # queue name, agent id ("" for calls no agent took), "08" (hour), "2024-05-01"
    label: str
    tally: kpi.Tally
    dispositions: dict[str, int] = field(default_factory=dict)
    callbacks_requested: int = 0
    callbacks_completed: int = 0

    def figures(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            **self.tally.figures(),
            "callbacks_requested": self.callbacks_requested,
            "callbacks_completed": self.callbacks_completed,
            "dispositions": dict(self.dispositions),
        }


@dataclass(frozen=True)
class KpiReport:
    grouping: str
    filter: KpiFilter
    rows: list[KpiRow]
    total: KpiRow


def _call_filters(f: KpiFilter) -> list[ColumnElement[bool]]:
    where = kpi_sql.calls_in(f.start, f.end)
    if f.queue:
        where.append(Call.queue == f.queue)
    if f.agent_id is not None:
        where.append(Call.agent_id == f.agent_id)
    if f.region:
        agents = kpi_sql.region_agents(f.region)
        where.append(or_(Call.agent_id.in_(agents), Call.agent_id.is_(None)))
    return where


def _callback_filters(f: KpiFilter) -> list[ColumnElement[bool]]:
    where = [QueueCallback.requested_at >= f.start, QueueCallback.requested_at < f.end]
    if f.queue:
        where.append(QueueCallback.queue == f.queue)
    if f.agent_id is not None:
        where.append(QueueCallback.agent_id == f.agent_id)
    if f.region:
        agents = kpi_sql.region_agents(f.region)
        where.append(or_(QueueCallback.agent_id.in_(agents), QueueCallback.agent_id.is_(None)))
    return where


async def _labels(conn: AsyncConnection, grouping: str, keys: set[str]) -> dict[str, str]:
    if grouping == "hour":
        return {k: f"{k}:00" for k in keys}
    if grouping == "queue":
        queues = select(CallQueue.name, CallQueue.display_name).where(CallQueue.name.in_(keys))
        return {k: k for k in keys} | {r[0]: r[1] for r in (await conn.execute(queues)).all()}
    if grouping == "agent":
        ids = [int(k) for k in keys if k]
        agents = select(User.id, User.display_name).where(User.id.in_(ids))
        return {k: k for k in keys} | {str(r[0]): r[1] for r in (await conn.execute(agents)).all()}
    return {k: k for k in keys}


async def _grouped(
    conn: AsyncConnection, grouping: str, f: KpiFilter
) -> tuple[dict[str, kpi.Tally], dict[str, dict[str, int]], dict[str, tuple[int, int]]]:
    dialect = conn.dialect.name
    by_key, dispositions = await kpi.tallies(
        conn, kpi_sql.call_key(dialect, grouping), _call_filters(f)
    )
    jobs = kpi_sql.callbacks_query(kpi_sql.callback_key(dialect, grouping), _callback_filters(f))
    callback_counts = {
        kpi.group_key(r.key): (int(r.requested), int(r.completed or 0))
        for r in (await conn.execute(jobs)).all()
    }
    return by_key, dispositions, callback_counts


def _sort_key(grouping: str, key: str) -> tuple[int, str]:
    if grouping == "agent":
        return (0, key.zfill(12)) if key else (1, "")
    return (0, key)


async def report(db: Database, grouping: str, f: KpiFilter) -> KpiReport:
    """The KPIs of the calls `f` selects, one row per group, plus the total of all rows."""
    if grouping not in kpi_sql.GROUPINGS:
        raise ValidationError(f"group by one of {', '.join(kpi_sql.GROUPINGS)}", field="group")
    f.check()
    async with db.connect() as conn:
        tallies, dispositions, callbacks = await _grouped(conn, grouping, f)
        keys = set(tallies) | set(callbacks)
        labels = await _labels(conn, grouping, keys)
    rows = [
        KpiRow(
            key=key,
            label=labels.get(key, key),
            tally=tallies.get(key, kpi.Tally()),
            dispositions=dispositions.get(key, {}),
            callbacks_requested=callbacks.get(key, (0, 0))[0],
            callbacks_completed=callbacks.get(key, (0, 0))[1],
        )
        for key in sorted(keys, key=lambda k: _sort_key(grouping, k))
    ]
    return KpiReport(grouping=grouping, filter=f, rows=rows, total=_total(rows))


def _total(rows: list[KpiRow]) -> KpiRow:
    tally = kpi.Tally()
    dispositions: dict[str, int] = defaultdict(int)
    for row in rows:
        tally = tally + row.tally
        for code, n in row.dispositions.items():
            dispositions[code] += n
    return KpiRow(
        key="total",
        label="total",
        tally=tally,
        dispositions=dict(dispositions),
        callbacks_requested=sum(r.callbacks_requested for r in rows),
        callbacks_completed=sum(r.callbacks_completed for r in rows),
    )
