"""Customer search, the customer 360 page and revealing a masked number."""

from __future__ import annotations

from aiohttp import web

from agent_desktop.context import AppContext
from agent_desktop.customers import pages


def setup(app: web.Application, ctx: AppContext) -> None:
    pages.setup(app, ctx)
