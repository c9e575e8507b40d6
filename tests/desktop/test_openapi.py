"""/api/openapi.json cannot drift from the app: every documented operation is a real route,
and every public JSON route of the documented resources is documented (a walk over the app's
real router, like test_admin_access.py, so a route added later fails here until described)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient
from desk_world import JSON, World, login_ok

from agent_desktop.apidocs.spec import OPERATIONS

RESOURCES = (
    "/api/customers",
    "/api/contacts",
    "/api/phones",
    "/api/vehicles",
    "/api/calls",
    "/api/recordings",
    "/api/tickets",
    "/api/work-orders",
)
# Routes under those prefixes that are not part of the public JSON API, and why.
NOT_DOCUMENTED = {
    ("GET", "/api/recordings/{id}/audio"),  # audio bytes, not metadata (recordings.md)
    ("POST", "/api/recordings/{id}/hold"),  # legal hold: recordings administration
    ("POST", "/api/recordings/{id}/reviews"),  # QA scorecards
    ("POST", "/api/recordings/purge"),  # retention run: administration
    ("POST", "/api/recordings/live/pause"),  # the agent desktop's live-call control
}


def routes(client: TestClient[Any, Any]) -> set[tuple[str, str]]:
    found = set()
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if route.method != "HEAD" and path.startswith("/api/"):
            found.add((route.method, path))
    return found


def test_every_documented_operation_is_a_real_route(client: TestClient[Any, Any]) -> None:
    documented = {(m, p) for m, p, _, _ in OPERATIONS}
    assert sorted(documented - routes(client)) == []


def test_every_public_route_of_the_resources_is_documented(
    client: TestClient[Any, Any],
) -> None:
    public = {(m, p) for m, p in routes(client) if p.startswith(RESOURCES)}
    documented = {(m, p) for m, p, _, _ in OPERATIONS}
    assert sorted(public - documented - NOT_DOCUMENTED) == []
    assert sorted(NOT_DOCUMENTED - routes(client)) == []  # no stale exclusions


async def test_the_description_is_served_to_authenticated_callers(
    client: TestClient[Any, Any], world: World
) -> None:
    anonymous = await client.get("/api/openapi.json", headers=JSON)
    assert anonymous.status == 401
    await login_ok(client, "agent_east")
    response = await client.get("/api/openapi.json", headers=JSON)
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.")
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "API token",
    }
    assert schemes["cookieAuth"]["in"] == "cookie"
    for path, operations in document["paths"].items():
        names = set(re.findall(r"\{([^}]+)\}", path))
        for operation in operations.values():
            params = {p["name"] for p in operation.get("parameters", [])}
            assert params == names, path
