"""Supervisor listen / whisper / barge from the wallboard (cti/supervise.py does the PBX side)."""

from __future__ import annotations

from aiohttp import web

import agent_desktop.supervise.http as http
from agent_desktop.context import AppContext


def setup(app: web.Application, ctx: AppContext) -> None:
    http.setup(app, ctx)
