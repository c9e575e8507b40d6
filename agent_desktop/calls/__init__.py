"""Calls: the CTI bridge on the app (pops over /ws, call log, click-to-dial, queue
log-in and pause), the agent desktop page and API, the IVR's providers and SLA reminders."""

from __future__ import annotations

from aiohttp import web

from agent_desktop.calls import cti, desktop_api, desktop_page, ivr, request_link, survey
from agent_desktop.context import AppContext


def setup(app: web.Application, ctx: AppContext) -> None:
    # The IVR's providers before the CTI bridge that asks them; the desktop API after the
    # bridge, whose hub it subscribes SLA reminders to.
    desktop_page.setup(app, ctx)
    ivr.setup(app, ctx)
    cti.setup(app, ctx)
    desktop_api.setup(app, ctx)
    request_link.setup(app, ctx)
    survey.setup(app, ctx)
