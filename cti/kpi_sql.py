"""The KPI aggregates as SQL on `calls` and `queue_callbacks` (docs/kpis.md).

One scan of the period's calls does it all: each call gets one `kind` (answered within the
service level, answered later, callback exit, voicemail, short abandon, abandoned, other),
judged against its own queue's thresholds, and the scan groups by (key, kind, disposition)
with plain sums. That is a few dozen groups, which cti/kpi.py folds into the KPIs. One
CASE per call and no join is what keeps a month of a busy hotline under a few hundred
milliseconds on SQLite.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal_column, select
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql import Select

from crm_core.models import CallQueue, User
from cti.models import Call, QueueCallback

DEFAULT_SERVICE_LEVEL_SECONDS = 20
DEFAULT_SHORT_ABANDON_SECONDS = 5
TIMEZONE = "Asia/Shanghai"  # the hotline's hours and days (cti.call_queries.SHANGHAI)
GROUPINGS = ("queue", "agent", "hour", "day")
KINDS = ("answered_in_sl", "answered", "callback", "voicemail", "short", "abandoned", "other")
Key = ColumnElement[Any] | InstrumentedAttribute[Any]
Thresholds = dict[str, tuple[int, int]]  # queue -> (service level s, short abandon s)

WAIT = func.coalesce(Call.wait_seconds, 0.0)
ANSWERED = Call.outcome.in_(("answered", "transferred"))
GAVE_UP = Call.outcome.in_(("abandoned", "missed"))
THRESHOLDS = select(
    CallQueue.name, CallQueue.service_level_seconds, CallQueue.short_abandon_seconds
)


def _per_queue(values: dict[str, int], default: int) -> ColumnElement[Any]:
    # Inlined literals, not a join: the queue table has a handful of rows, the period
    # hundreds of thousands of calls.
    if not values:
        return literal_column(str(int(default)))
    whens: dict[Any, Any] = {
        name: literal_column(str(int(seconds))) for name, seconds in values.items()
    }
    return case(whens, value=Call.queue, else_=literal_column(str(int(default))))


def kind(thresholds: Thresholds) -> ColumnElement[str]:
    """What became of a call, in this order of precedence (docs/kpis.md)."""
    sl = _per_queue({q: t[0] for q, t in thresholds.items()}, DEFAULT_SERVICE_LEVEL_SECONDS)
    short = _per_queue({q: t[1] for q, t in thresholds.items()}, DEFAULT_SHORT_ABANDON_SECONDS)
    wait = WAIT
    return case(
        (and_(ANSWERED, wait <= sl), literal_column("'answered_in_sl'")),
        (ANSWERED, literal_column("'answered'")),
        (func.coalesce(Call.routed, "") == "callback", literal_column("'callback'")),
        (Call.voicemail_at.is_not(None), literal_column("'voicemail'")),
        (and_(GAVE_UP, wait < short), literal_column("'short'")),
        (GAVE_UP, literal_column("'abandoned'")),
        else_=literal_column("'other'"),
    )


def group_query(
    key: Key | None, thresholds: Thresholds, where: list[ColumnElement[bool]]
) -> Select[*tuple[Any, ...]]:
    """One row per (key, kind, disposition) with the sums cti.kpi.Tally.of_group reads."""
    inner = (
        select(
            (key if key is not None else literal_column("'all'")).label("key"),
            kind(thresholds).label("kind"),
            Call.disposition.label("disposition"),
            WAIT.label("wait"),
            func.coalesce(Call.talk_seconds, 0.0).label("talk"),
            func.coalesce(Call.hold_seconds, 0.0).label("hold"),
            func.coalesce(Call.wrapup_seconds, 0.0).label("wrapup"),
            Call.survey_score.label("score"),
            case((Call.routed == "overflow", 1), else_=0).label("overflow"),
        )
        .where(*where)
        .subquery()
    )
    c = inner.c
    return select(
        c.key,
        c.kind,
        c.disposition,
        func.count().label("n"),
        func.sum(c.wait).label("wait"),
        func.max(c.wait).label("longest_wait"),
        func.sum(c.talk).label("talk"),
        func.sum(c.hold).label("hold"),
        func.sum(c.wrapup).label("wrapup"),
        func.count(c.score).label("surveyed"),
        func.coalesce(func.sum(c.score), 0).label("survey_total"),
        func.sum(c.overflow).label("overflowed"),
    ).group_by(c.key, c.kind, c.disposition)


def local_bucket(dialect: str, column: Any, grouping: str) -> ColumnElement[Any]:
    """The Beijing-time day ('2024-05-01') or hour of day ('08') of a UTC timestamp column.

    The patterns are SQL literals, not bind parameters: PostgreSQL must see the GROUP BY
    expression identical to the selected one."""
    if dialect == "sqlite":
        pattern = "'%Y-%m-%d'" if grouping == "day" else "'%H'"
        return func.strftime(literal_column(pattern), column, literal_column("'+8 hours'"))
    pattern = "'YYYY-MM-DD'" if grouping == "day" else "'HH24'"
    local = func.timezone(literal_column(f"'{TIMEZONE}'"), column)
    return func.to_char(local, literal_column(pattern))


def call_key(dialect: str, grouping: str) -> Key:
    if grouping == "queue":
        return Call.queue
    if grouping == "agent":
        return Call.agent_id
    return local_bucket(dialect, Call.entered_at, grouping)


def callback_key(dialect: str, grouping: str) -> Key:
    if grouping == "queue":
        return QueueCallback.queue
    if grouping == "agent":
        return QueueCallback.agent_id
    return local_bucket(dialect, QueueCallback.requested_at, grouping)


def region_agents(region: str) -> Select[*tuple[Any, ...]]:
    return select(User.id).where(User.region == region)


def calls_in(start: Any, end: Any) -> list[ColumnElement[bool]]:
    """The calls a KPI counts: inbound, finished, through a queue, during opening hours."""
    return [
        Call.entered_at >= start,
        Call.entered_at < end,
        Call.direction == "inbound",
        Call.queue.is_not(None),
        Call.outcome.is_not(None),
        func.coalesce(Call.routed, "") != "closed",
    ]


def callbacks_query(key: Key, where: list[ColumnElement[bool]]) -> Select[*tuple[Any, ...]]:
    group_key = key.label("key")
    return (
        select(
            group_key,
            func.count().label("requested"),
            func.sum(case((QueueCallback.state == "done", 1), else_=0)).label("completed"),
        )
        .where(*where)
        .group_by(group_key)
    )
