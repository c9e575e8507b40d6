"""The supervisors' live wallboard."""

from __future__ import annotations

from aiohttp import web

from agent_desktop.context import AppContext
from agent_desktop.wallboard import live


def setup(app: web.Application, ctx: AppContext) -> None:
    live.setup(app, ctx)
