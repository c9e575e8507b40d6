"""Call and agent KPI reports (issue #18 §5): the page with charts, its JSON API, CSV/XLSX.

The figures come from cti.kpi_report; docs/kpis.md defines each one."""

from __future__ import annotations

from aiohttp import web

import agent_desktop.reports_calls.http as http
from agent_desktop.context import AppContext


def setup(app: web.Application, ctx: AppContext) -> None:
    http.setup(app, ctx)
