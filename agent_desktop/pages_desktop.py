"""The agent desktop page. The call panel is filled by the CTI feature (pop over WebSocket)."""

from __future__ import annotations

from aiohttp import web

from agent_desktop.pages import add_nav, render
from agent_desktop.server import AppContext


async def desktop_page(request: web.Request) -> web.Response:
    return render(request, "desktop.html")


def setup(app: web.Application, ctx: AppContext) -> None:
    app.router.add_get("/desktop", desktop_page)
    add_nav(app, "/desktop", "Desktop", ("agent", "supervisor", "admin"))
