"""Customer search, the customer 360 page and revealing a masked number."""

from __future__ import annotations

from aiohttp import web

from agent_desktop.context import AppContext
from agent_desktop.customers import edit_api, merge_api, pages
from agent_desktop.customers.merge_wiring import follow_merges


def setup(app: web.Application, ctx: AppContext) -> None:
    pages.setup(app, ctx)
    # Editing, merging and history restore (issue #17 §2).
    edit_api.setup(app, ctx)
    merge_api.setup(app, ctx)
    follow_merges(ctx.bus, ctx.db)
