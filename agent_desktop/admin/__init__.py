"""Administration (系统管理): users and roles, agents' extensions and queue memberships,
queues, regional offices, technicians and API tokens; pages, JSON API and the same services
for the CLI."""

from __future__ import annotations

from aiohttp import web

import agent_desktop.admin.technician_import  # noqa: F401 - registers the import kind
from agent_desktop.admin import api, pages, tokens_api
from agent_desktop.common.pages import add_nav
from agent_desktop.context import AppContext


def setup(app: web.Application, ctx: AppContext) -> None:
    api.setup(app)
    pages.setup(app)
    tokens_api.setup(app)  # API tokens (issue #21 §3)
    add_nav(app, "/admin/users", "Administration", ("admin",))
