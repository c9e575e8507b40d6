"""Call-center operations (#18): opening hours and closures, overflow and voicemail facts,
and the queue-callback worker. The FastAGI handlers are handed to the calls feature's FastAGI
server as providers, so this feature is set up before calls; the worker starts with the app,
once the calls feature has put the CTI bridge and the AMI client on it."""

from __future__ import annotations

from aiohttp import web

import agent_desktop.operations.closures as closures
import agent_desktop.operations.wiring as wiring
from agent_desktop.context import AppContext


def setup(app: web.Application, ctx: AppContext) -> None:
    wiring.setup(app, ctx)
    closures.setup(app, ctx)
