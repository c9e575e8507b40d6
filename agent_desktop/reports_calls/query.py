"""What a call report asks for: period, grouping and filters from the query string, cut to
the viewer's data scope (a supervisor with a region sees their region's agents only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from agent_desktop.common.sessions import SessionUser
from crm_core.errors import ValidationError
from cti.kpi_report import MAX_DAYS, KpiFilter
from cti.kpi_sql import GROUPINGS

DEFAULT_DAYS = 30


@dataclass(frozen=True)
class ReportRequest:
    first: date  # local days, both included
    last: date
    grouping: str
    queue: str | None
    agent_id: int | None
    region: str | None
    region_locked: bool  # the viewer's own region, not a choice

    def kpi_filter(self, zone: ZoneInfo) -> KpiFilter:
        start = datetime.combine(self.first, time(), zone)
        end = datetime.combine(self.last + timedelta(days=1), time(), zone)
        return KpiFilter(start, end, self.queue, self.agent_id, self.region)

    def query(self) -> dict[str, str]:
        """The query string that asks for the same report (export links)."""
        values = {
            "since": self.first.isoformat(),
            "until": self.last.isoformat(),
            "group": self.grouping,
            "queue": self.queue or "",
            "agent": "" if self.agent_id is None else str(self.agent_id),
            "region": "" if self.region_locked else (self.region or ""),
        }
        return {k: v for k, v in values.items() if v}


def _day(text: str | None, default: date, field: str) -> date:
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError("dates look like 2026-03-01", field=field) from None


def _agent(text: str | None) -> int | None:
    if not text:
        return None
    if not text.isdigit():
        raise ValidationError("agent is a user id", field="agent")
    return int(text)


def parse(request: web.Request, user: SessionUser, zone: ZoneInfo) -> ReportRequest:
    q = request.query
    last = _day(q.get("until"), datetime.now(zone).date(), "until")
    first = _day(q.get("since"), last - timedelta(days=DEFAULT_DAYS - 1), "since")
    if first > last:
        raise ValidationError("the first day is after the last", field="since")
    if (last - first).days >= MAX_DAYS:
        raise ValidationError(f"a report covers at most {MAX_DAYS} days", field="since")
    grouping = q.get("group") or "queue"
    if grouping not in GROUPINGS:
        raise ValidationError(f"group by one of {', '.join(GROUPINGS)}", field="group")
    locked = user.role == "supervisor" and user.region is not None
    return ReportRequest(
        first=first,
        last=last,
        grouping=grouping,
        queue=q.get("queue") or None,
        agent_id=_agent(q.get("agent")),
        region=user.region if locked else (q.get("region") or None),
        region_locked=locked,
    )
