"""The OpenAPI description of the public JSON API (issue #21 §3), at /api/openapi.json.

Authenticated like every other route: it tells nothing an API client does not already hold.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from aiohttp import web

import agent_desktop.apidocs.spec as spec
from agent_desktop.context import AppContext


def _version() -> str:
    try:
        return version("hotline")
    except PackageNotFoundError:
        return "0"


async def openapi(_request: web.Request) -> web.Response:
    return web.json_response(spec.document(_version()))


def setup(app: web.Application, ctx: AppContext) -> None:
    app.router.add_get("/api/openapi.json", openapi)
