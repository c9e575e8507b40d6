"""The reports page: ticketing.reports' tables, plus what a supervisor looks at first —
daily trends and bars per region — drawn as inline SVG by agent_desktop.common.charts.

The figures per region and per day are computed here from the same rows and with the same
percentile rule as ticketing.reports, so the page and the CSV export agree.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web
from markupsafe import Markup
from sqlalchemy import select

from agent_desktop.common.charts import Series, bar_chart, line_chart
from agent_desktop.common.guards import require_roles
from agent_desktop.common.labels import TICKET_LABELS
from agent_desktop.common.pages import add_nav, translator
from agent_desktop.context import CONTEXT_KEY, AppContext
from agent_desktop.tickets.data import user_names
from agent_desktop.tickets.labels import ticket_page
from crm_core.db import Database
from crm_core.errors import ValidationError
from cti.call_queries import survey_scores_by_agent
from ticketing.models import ServiceRequest, SlaBreach
from ticketing.reports import _hours, ticket_report

DEFAULT_DAYS = 30
MAX_DAYS = 366
CLOSED = ("closed", "resolved_by_phone")


@dataclass(frozen=True)
class Period:
    first: date  # local days, both included
    last: date

    def bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        start = datetime.combine(self.first, time(), zone)
        return start, datetime.combine(self.last + timedelta(days=1), time(), zone)

    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


def _period(request: web.Request, zone: ZoneInfo) -> Period:
    today = datetime.now(zone).date()
    try:
        last = date.fromisoformat(request.query.get("until") or today.isoformat())
        first = date.fromisoformat(
            request.query.get("since") or (last - timedelta(days=DEFAULT_DAYS - 1)).isoformat()
        )
    except ValueError:
        raise ValidationError("dates look like 2026-03-01", field="since") from None
    if first > last or (last - first).days >= MAX_DAYS:
        raise ValidationError(f"choose a period of 1 to {MAX_DAYS} days", field="since")
    return Period(first, last)


async def _rows(db: Database, since: datetime, until: datetime) -> tuple[list[Any], list[Any]]:
    async with db.transaction() as s:
        requests = (
            await s.scalars(
                select(ServiceRequest).where(
                    ServiceRequest.created_at >= since, ServiceRequest.created_at < until
                )
            )
        ).all()
        breaches = (
            await s.execute(
                select(SlaBreach.kind, ServiceRequest.region)
                .join(ServiceRequest, ServiceRequest.id == SlaBreach.request_id)
                .where(ServiceRequest.created_at >= since, ServiceRequest.created_at < until)
            )
        ).all()
    return list(requests), list(breaches)


def _region(row: ServiceRequest) -> str:
    return row.region or "-"


def _per_region(requests: list[ServiceRequest]) -> list[dict[str, Any]]:
    groups: dict[str, list[ServiceRequest]] = defaultdict(list)
    for row in requests:
        groups[_region(row)].append(row)
    return [
        {
            "region": region,
            "total": len(rows),
            "open": sum(1 for r in rows if r.state not in CLOSED),
            "dispatch": _hours((r.created_at, r.dispatched_at) for r in rows),
            "complete": _hours((r.created_at, r.completed_at) for r in rows),
        }
        for region, rows in sorted(groups.items())
    ]


def _daily(requests: list[ServiceRequest], period: Period, zone: ZoneInfo) -> dict[str, Any]:
    created: dict[str, Counter[date]] = defaultdict(Counter)
    dispatch_hours: dict[date, list[float]] = defaultdict(list)
    complete_hours: dict[date, list[float]] = defaultdict(list)
    for row in requests:
        day = row.created_at.astimezone(zone).date()
        created[_region(row)][day] += 1
        if row.dispatched_at:
            dispatch_hours[day].append((row.dispatched_at - row.created_at).total_seconds() / 3600)
        if row.completed_at:
            complete_hours[day].append((row.completed_at - row.created_at).total_seconds() / 3600)

    def mean(values: list[float]) -> float | None:
        return round(sum(values) / len(values), 2) if values else None

    days = period.days()
    return {
        "labels": [d.strftime("%m-%d") for d in days],
        "created": [Series(k, [float(c[d]) for d in days]) for k, c in sorted(created.items())],
        "dispatch": [mean(dispatch_hours[d]) for d in days],
        "complete": [mean(complete_hours[d]) for d in days],
    }


def _charts(
    request: web.Request,
    report: dict[str, Any],
    regions: list[dict[str, Any]],
    daily: dict[str, Any],
    breaches: list[Any],
    technicians: dict[int, str],
) -> dict[str, Markup]:
    _ = translator(request)
    names = [r["region"] for r in regions]
    by_region_kind = Counter((region or "-", kind) for kind, region in breaches)
    kinds = sorted({k for _r, k in by_region_kind})
    satisfaction = {s["key"]: s["mean"] for s in report["satisfaction_by_region"]}
    tech_rows = report["satisfaction_by_technician"]
    hours = [
        Series(_("To dispatch"), daily["dispatch"]),
        Series(_("To complete"), daily["complete"]),
    ]
    counts = [
        Series(_("All"), [r["total"] for r in regions]),
        Series(_("Still open"), [r["open"] for r in regions]),
    ]
    dispatch = [
        Series(_("Mean"), [r["dispatch"]["mean_hours"] for r in regions]),
        Series(_("p90"), [r["dispatch"]["p90_hours"] for r in regions]),
    ]
    kind_series = [
        Series(_(TICKET_LABELS["sla_kind"].get(k, k)), [by_region_kind[(n, k)] for n in names])
        for k in kinds
    ]
    scores = [Series(_("Mean score"), [satisfaction.get(n) for n in names])]
    tech_names = [_tech_name(t["key"], technicians) for t in tech_rows]
    tech_scores = [Series(_("Mean score"), [t["mean"] for t in tech_rows])]
    return {
        "trend_created": line_chart(
            "chart-trend-created",
            _("New requests per day, by region"),
            daily["labels"],
            daily["created"],
        ),
        "trend_hours": line_chart(
            "chart-trend-hours",
            _("Mean hours to dispatch and to complete, by day of creation"),
            daily["labels"],
            hours,
        ),
        "region_counts": bar_chart("chart-region-counts", _("Requests per region"), names, counts),
        "region_hours": bar_chart(
            "chart-region-hours", _("Hours to dispatch per region (mean, p90)"), names, dispatch
        ),
        "region_satisfaction": bar_chart(
            "chart-region-satisfaction", _("Satisfaction per region (1–5)"), names, scores
        ),
        "technician_satisfaction": bar_chart(
            "chart-technician-satisfaction",
            _("Satisfaction per technician (1–5)"),
            tech_names,
            tech_scores,
        ),
        "region_breaches": bar_chart(
            "chart-region-breaches", _("SLA breaches per region"), names, kind_series
        ),
    }


def _tech_name(key: str, technicians: dict[int, str]) -> str:
    return technicians.get(int(key), key) if key.isdigit() else key


@require_roles("supervisor", "admin", "auditor")
async def reports_page(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT_KEY]
    zone = ZoneInfo(ctx.settings.timezone)
    period = _period(request, zone)
    since, until = period.bounds(zone)
    report = await ticket_report(ctx.db, since, until)
    requests, breaches = await _rows(ctx.db, since, until)
    regions = _per_region(requests)
    keys = [t["key"] for t in report["satisfaction_by_technician"]]
    technicians = await user_names(ctx.db, [int(k) for k in keys if k.isdigit()])
    agent_scores = await survey_scores_by_agent(ctx.db, since, until)
    agents = await user_names(ctx.db, [a["agent_id"] for a in agent_scores])
    query = urlencode({"since": since.isoformat(), "until": until.isoformat(), "format": "csv"})
    return ticket_page(
        request,
        "reports.html",
        period=period,
        report=report,
        regions=regions,
        charts=_charts(request, report, regions, _daily(requests, period, zone), breaches,
                       technicians),
        technicians={k: _tech_name(k, technicians) for k in keys},
        agent_scores=agent_scores,
        agents=agents,
        csv_url=f"/api/tickets/reports?{query}",
    )  # fmt: skip


def setup(app: web.Application, ctx: AppContext) -> None:
    app.router.add_get("/reports", reports_page)
    add_nav(app, "/reports", "Reports", ("supervisor", "admin", "auditor"))
