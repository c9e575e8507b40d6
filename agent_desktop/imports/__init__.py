"""Customer-data import for admins: the upload page, its JSON API and the error reports."""

from __future__ import annotations

from aiohttp import web

from agent_desktop.context import AppContext
from agent_desktop.imports import pages


def setup(app: web.Application, ctx: AppContext) -> None:
    pages.setup(app, ctx)
