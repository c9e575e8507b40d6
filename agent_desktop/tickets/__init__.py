"""Service requests: the ticketing REST API, the SLA worker, the ticket pages and reports."""

from __future__ import annotations

from aiohttp import web

from agent_desktop.context import AppContext
from agent_desktop.tickets import api, pages, reports, work


def setup(app: web.Application, ctx: AppContext) -> None:
    # The API first: it subscribes the survey and starts the SLA worker.
    api.setup(app, ctx)
    pages.setup(app, ctx)
    work.setup(app, ctx)
    reports.setup(app, ctx)
