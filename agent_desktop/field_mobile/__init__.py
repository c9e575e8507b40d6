"""The technician's mobile page (/m/<signed token>, issue #21 §2), the photos and signatures
on the desktop, and offering a work order to several technicians.

The /m/ routes are the only ones authenticated by a signed link instead of a session: the
auth middleware lets exactly that prefix through (mark_public), and every handler verifies
the token again before it reads or changes anything (mobile.py).
"""

from __future__ import annotations

from aiohttp import web

from agent_desktop.context import AppContext
from agent_desktop.field_mobile import desk, mobile


def setup(app: web.Application, ctx: AppContext) -> None:
    mobile.setup(app, ctx)
    desk.setup(app, ctx)
