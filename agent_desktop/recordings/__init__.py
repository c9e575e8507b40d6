"""Recording review: ingest and retention workers, the review pages, streams and QA."""

from __future__ import annotations

from aiohttp import web

from agent_desktop.context import AppContext
from agent_desktop.recordings import api


def setup(app: web.Application, ctx: AppContext) -> None:
    api.setup(app, ctx)
