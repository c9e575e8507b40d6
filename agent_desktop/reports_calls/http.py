"""/reports/calls (page with charts), /api/reports/calls (JSON) and its CSV/XLSX export.

Roles: supervisor, admin, auditor. A supervisor with a region sees the calls of their
region's agents and the calls no agent took (query.parse locks the region filter)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web
from markupsafe import Markup
from sqlalchemy import select

import agent_desktop.reports_calls.export as export
import agent_desktop.reports_calls.query as query
from agent_desktop.common.charts import Series, bar_chart, line_chart
from agent_desktop.common.guards import current_user, require_roles
from agent_desktop.common.pages import add_nav, render, translator
from agent_desktop.context import CONTEXT_KEY, AppContext
from crm_core.db import Database
from crm_core.errors import ValidationError
from crm_core.models import CallQueue, DispositionCode, User
from cti.kpi_report import KpiReport, report

ROLES = ("supervisor", "admin", "auditor")
FORMATS = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


async def _run(request: web.Request) -> tuple[query.ReportRequest, KpiReport]:
    ctx = request.app[CONTEXT_KEY]
    zone = ZoneInfo(ctx.settings.timezone)
    asked = query.parse(request, current_user(request), zone)
    return asked, await report(ctx.db, asked.grouping, asked.kpi_filter(zone))


async def _choices(db: Database, region: str | None) -> dict[str, Any]:
    """The filter form's options: queues, agents (of the region, if one), regions."""
    agents = select(User.id, User.display_name).where(User.role == "agent").order_by(User.id)
    if region:
        agents = agents.where(User.region == region)
    async with db.connect() as conn:
        queues = (await conn.execute(select(CallQueue.name, CallQueue.display_name))).all()
        people = (await conn.execute(agents)).all()
        regions = (
            await conn.execute(select(User.region).where(User.region.is_not(None)).distinct())
        ).scalars()
        codes = (await conn.execute(select(DispositionCode.code, DispositionCode.label))).all()
        return {
            "queues": sorted((r[0], r[1]) for r in queues),
            "agents": [(r[0], r[1]) for r in people],
            "regions": sorted(str(r) for r in regions),
            "dispositions": {r[0]: r[1] for r in codes},
        }


def _charts(request: web.Request, result: KpiReport) -> dict[str, Markup]:
    _ = translator(request)
    labels = [export.row_label(r, result.grouping, _) for r in result.rows]
    volume = [
        Series(_("Offered"), [float(r.tally.offered) for r in result.rows]),
        Series(_("Answered"), [float(r.tally.answered) for r in result.rows]),
        Series(_("Abandoned"), [float(r.tally.abandoned) for r in result.rows]),
    ]
    rates = [
        Series(_("Service level %"), [r.tally.service_level for r in result.rows]),
        Series(_("Abandon rate %"), [r.tally.abandon_rate for r in result.rows]),
    ]
    times = [
        Series(_("ASA (s)"), [r.tally.asa for r in result.rows]),
        Series(_("AHT (s)"), [r.tally.aht for r in result.rows]),
    ]
    draw = line_chart if result.grouping == "day" else bar_chart
    return {
        "volume": draw("chart-call-volume", _("Calls"), labels, volume),
        "rates": draw("chart-call-rates", _("Service level and abandons"), labels, rates),
        "times": draw("chart-call-times", _("Answer speed and handling time"), labels, times),
    }


@require_roles(*ROLES)
async def page(request: web.Request) -> web.Response:
    asked, result = await _run(request)
    ctx = request.app[CONTEXT_KEY]
    choices = await _choices(ctx.db, asked.region if asked.region_locked else None)
    _ = translator(request)
    rows = export.table(result, _, choices["dispositions"])
    link = urlencode(asked.query())
    return render(
        request,
        "reports_calls.html",
        asked=asked,
        choices=choices,
        header=rows[0],
        body=rows[1:],
        charts=_charts(request, result),
        csv_url=f"/api/reports/calls/export?{link}&format=csv",
        xlsx_url=f"/api/reports/calls/export?{link}&format=xlsx",
    )


@require_roles(*ROLES)
async def api(request: web.Request) -> web.Response:
    asked, result = await _run(request)
    return web.json_response(
        {
            "since": asked.first.isoformat(),
            "until": asked.last.isoformat(),
            "group": asked.grouping,
            "filters": {"queue": asked.queue, "agent": asked.agent_id, "region": asked.region},
            "rows": [r.figures() for r in result.rows],
            "total": result.total.figures(),
        }
    )


@require_roles(*ROLES)
async def export_file(request: web.Request) -> web.Response:
    fmt = request.query.get("format", "csv")
    if fmt not in FORMATS:
        raise ValidationError("format is csv or xlsx", field="format")
    asked, result = await _run(request)
    choices = await _choices(request.app[CONTEXT_KEY].db, None)
    rows = export.table(result, translator(request), choices["dispositions"])
    name = f"call-kpis-{asked.grouping}-{asked.first}-{asked.last}"
    if fmt == "csv":
        body = export.to_csv(rows)
    else:  # the workbook is built off the loop: a year by day is a few hundred rows
        body = await asyncio.to_thread(export.to_xlsx, rows, asked.grouping)
    return web.Response(
        body=body,
        content_type=FORMATS[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'},
    )


def setup(app: web.Application, ctx: AppContext) -> None:
    app.router.add_get("/reports/calls", page)
    app.router.add_get("/api/reports/calls", api)
    app.router.add_get("/api/reports/calls/export", export_file)
    add_nav(app, "/reports/calls", "Call reports", ROLES)
