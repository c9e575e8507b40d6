"""The business side of the supervisors' wallboard (老板视图): open service requests by region
and stage, overdue dispatches, follow-ups due today.

Built for a board refreshed every second: two aggregate queries, grouped by region, so the
composition root computes the figures once per tick for every screen and each supervisor's
screen keeps only its own region's rows. The overdue rules are those of `ticketing/sla.py`
(`find_overdue`): a request sent to an office and not dispatched by its response due time
("dispatch"), a work order not accepted by its accept due time ("accept").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, literal_column, select, union_all

from crm_core.db import Database
from ticketing.models import FollowUp, ServiceRequest, WorkOrder
from ticketing.states import AWAITING_ACCEPT, FollowUpState, RequestState

# The stages a request is still open in, in lifecycle order (the board's columns).
OPEN_STAGES: tuple[str, ...] = tuple(
    s.value
    for s in (
        RequestState.NEW,
        RequestState.SUBMITTED,
        RequestState.UNDER_REVIEW,
        RequestState.COMPLAINT_REVIEW,
        RequestState.COMPLAINT_HANDLING,
        RequestState.REJECTED,
        RequestState.DISPATCHED_TO_OFFICE,
        RequestState.IN_FIELD,
        RequestState.COMPLETED,
        RequestState.FOLLOW_UP,
    )
)
_FOLLOW_UP_OPEN = (FollowUpState.PENDING.value, FollowUpState.RESCHEDULED.value)
# Counted per region by the second query; each is one labelled branch of a UNION ALL.
KINDS = ("overdue_accept", "follow_ups_today", "follow_ups_today_late", "follow_ups_earlier")


@dataclass
class RegionFigures:
    """One region's tiles. `region` None: requests with no region (shown to everyone who
    sees every region)."""

    region: str | None
    stages: dict[str, int] = field(default_factory=dict)
    overdue_dispatch: int = 0  # sent to the office, no work order by the response due time
    overdue_accept: int = 0  # work order not accepted by the technician in time
    follow_ups_today: int = 0  # open follow-ups due today (local day)
    follow_ups_today_late: int = 0  # of those, already past their due time
    follow_ups_earlier: int = 0  # open follow-ups due before today, still not done

    @property
    def open_requests(self) -> int:
        return sum(self.stages.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "open_requests": self.open_requests,
            "stages": dict(self.stages),
            "overdue_dispatch": self.overdue_dispatch,
            "overdue_accept": self.overdue_accept,
            "follow_ups_today": self.follow_ups_today,
            "follow_ups_today_late": self.follow_ups_today_late,
            "follow_ups_earlier": self.follow_ups_earlier,
        }


def local_day(now: datetime, timezone: str) -> tuple[datetime, datetime]:
    """Start and end (exclusive) of `now`'s calendar day in `timezone`, as aware datetimes."""
    zone = ZoneInfo(timezone)
    day = now.astimezone(zone).date()
    start = datetime.combine(day, time(0), tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)


def _requests_query(now: datetime) -> Any:
    overdue_dispatch = (ServiceRequest.state == RequestState.DISPATCHED_TO_OFFICE.value) & (
        ServiceRequest.response_due_at < now
    )
    return (
        select(
            ServiceRequest.region,
            ServiceRequest.state,
            func.count().label("n"),
            func.sum(case((overdue_dispatch, 1), else_=0)).label("overdue_dispatch"),
        )
        .where(ServiceRequest.state.in_(OPEN_STAGES))
        .group_by(ServiceRequest.region, ServiceRequest.state)
    )


def _kind(kind: str) -> Any:
    # A constant in the SQL text, not a bind: PostgreSQL cannot type a bare parameter in a
    # UNION's select list.
    assert kind in KINDS
    return literal_column(f"'{kind}'").label("kind")


def _counts_query(now: datetime, start: datetime, end: datetime) -> Any:
    region = ServiceRequest.region

    def follow_ups(kind: str, *where: Any) -> Any:
        return (
            select(region, _kind(kind), func.count().label("n"))
            .join(FollowUp, FollowUp.request_id == ServiceRequest.id)
            .where(FollowUp.state.in_(_FOLLOW_UP_OPEN), *where)
            .group_by(region)
        )

    accept = (
        select(region, _kind("overdue_accept"), func.count().label("n"))
        .join(WorkOrder, WorkOrder.request_id == ServiceRequest.id)
        .where(WorkOrder.state.in_(AWAITING_ACCEPT), WorkOrder.accept_due_at < now)
        .group_by(region)
    )
    return union_all(
        accept,
        follow_ups("follow_ups_today", FollowUp.due_at >= start, FollowUp.due_at < end),
        follow_ups("follow_ups_today_late", FollowUp.due_at >= start, FollowUp.due_at < now),
        follow_ups("follow_ups_earlier", FollowUp.due_at < start),
    )


async def business_board(
    db: Database, now: datetime, timezone: str = "Asia/Shanghai"
) -> list[RegionFigures]:
    """Every region's figures at `now` (aware), sorted by region (no region last)."""
    start, end = local_day(now, timezone)
    async with db.connect() as conn:
        requests = (await conn.execute(_requests_query(now))).all()
        counts = (await conn.execute(_counts_query(now, start, end))).all()
    regions: dict[str | None, RegionFigures] = {}

    def of(name: str | None) -> RegionFigures:
        return regions.setdefault(name, RegionFigures(name))

    for row in requests:
        figures = of(row.region)
        figures.stages[row.state] = int(row.n)
        figures.overdue_dispatch += int(row.overdue_dispatch or 0)
    for row in counts:
        figures = of(row.region)
        setattr(figures, row.kind, getattr(figures, row.kind) + int(row.n))
    return sorted(regions.values(), key=lambda f: (f.region is None, f.region or ""))
