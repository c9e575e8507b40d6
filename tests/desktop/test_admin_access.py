"""Every admin page and API route refuses everyone but an admin: a sweep over the app's real
routing table (so a route added later is covered without editing this test)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from desk_world import JSON, ORIGIN, World, audit_rows, login_ok

from crm_core.users import create_user

NON_ADMIN = ("agent_east", "sup_east", "tech_east", "dispatcher1", "auditor1")


def admin_routes(client: TestClient[Any, Any]) -> list[tuple[str, str]]:
    found = []
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if route.method != "HEAD" and path.startswith(("/admin", "/api/admin")):
            # Any path parameter: a plausible value (ids and tokens are hex/digits).
            found.append((route.method, re.sub(r"\{[^}]+\}", "1", path)))
    return sorted(set(found))


async def _add_new_roles(world: World) -> None:
    for username, role in (("dispatcher1", "dispatcher"), ("auditor1", "auditor")):
        await create_user(
            world.db,
            {"username": username, "display_name": username, "role": role, "region": "华东"},
            password="correct-horse-9",
        )


def test_the_sweep_covers_every_kind_of_admin_route(client: TestClient[Any, Any]) -> None:
    routes = admin_routes(client)
    methods = {m for m, _ in routes}
    assert {"GET", "POST", "PATCH", "PUT", "DELETE"} <= methods
    paths = {p for _, p in routes}
    for expected in (
        "/admin/users",
        "/api/admin/users",
        "/api/admin/queues",
        "/api/admin/offices",
        "/api/admin/technicians",
        "/admin/technicians",
    ):
        assert expected in paths


@pytest.mark.parametrize("username", NON_ADMIN)
async def test_non_admins_get_403_on_every_admin_route(
    client: TestClient[Any, Any], world: World, username: str
) -> None:
    await _add_new_roles(world)
    token = await login_ok(client, username)
    headers = {**JSON, "X-CSRF-Token": token, "Origin": ORIGIN}
    routes = admin_routes(client)
    for method, path in routes:
        response = await client.request(method, path, headers=headers, json={})
        assert response.status == 403, f"{username} {method} {path}: {response.status}"
    denied = [r for r in await audit_rows(world.db, "access_denied") if r.user_id is not None]
    assert len(denied) >= len(routes)


async def test_anonymous_gets_401_on_every_admin_api_route(client: TestClient[Any, Any]) -> None:
    for method, path in admin_routes(client):
        response = await client.request(method, path, headers=JSON, json={})
        assert response.status == 401, f"{method} {path}: {response.status}"


async def test_admin_pages_render_for_an_admin(client: TestClient[Any, Any]) -> None:
    await login_ok(client, "admin1")
    for path in ("/admin/users", "/admin/queues", "/admin/offices", "/admin/technicians"):
        response = await client.get(path)
        assert response.status == 200, path
        assert "系统管理" in await response.text()
