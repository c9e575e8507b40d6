"""Login, logout, sessions, CSRF, lockout and the login history: the middleware that
authenticates every request, and the login pages."""

from __future__ import annotations

from aiohttp import web

from agent_desktop.auth import api, pages, password
from agent_desktop.context import AppContext


def setup(app: web.Application, ctx: AppContext) -> None:
    # The middleware first (api), then the login pages.
    api.setup(app, ctx)
    pages.setup(app, ctx)
    password.setup(app, ctx)
