"""Every route of the real app needs a session unless it is explicitly public."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from agent_desktop.common.guards import is_public, mark_public

# The public set of this feature; other features add their own with mark_public.
EXPECTED_PUBLIC = {"/login", "/api/login", "/healthz", "/lang/{locale}"}


def _concrete(path: str) -> str:
    """/customers/{customer_id:\\d+} → /customers/1 (the handler is never reached anyway)."""
    return re.sub(r"\{[^}]+\}", "1", path)


def _routes(app: web.Application) -> list[tuple[str, str]]:
    found = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        if path is None or route.method == "HEAD":
            continue
        method = "GET" if route.method == "*" else route.method
        found.append((method, path))
    return found


async def test_every_non_public_route_requires_a_session(client: TestClient[Any, Any]) -> None:
    app = client.app
    assert app is not None
    routes = _routes(app)
    assert ("GET", "/customers/{customer_id}") in routes or any(
        p.startswith("/customers/{") for _m, p in routes
    )
    public = {p for _m, p in routes if is_public(app, _concrete(p))}
    assert public | {"/static"} >= EXPECTED_PUBLIC
    checked = 0
    for method, path in routes:
        url = _concrete(path)
        if is_public(app, url):
            continue
        api = await client.request(method, url, headers={"Accept": "application/json"})
        assert api.status == 401, (method, path, api.status)
        assert (await api.json())["error_id"] == "not_authenticated"
        if method == "GET" and not path.startswith("/api/"):
            page = await client.get(url, headers={"Accept": "text/html"}, allow_redirects=False)
            assert page.status == 303, (path, page.status)
            assert page.headers["Location"].startswith("/login?next=")
        checked += 1
    assert checked >= 8


async def test_unknown_paths_do_not_reveal_themselves(client: TestClient[Any, Any]) -> None:
    response = await client.get("/no/such/page", headers={"Accept": "application/json"})
    assert response.status == 401


async def test_static_files_and_health_are_public(client: TestClient[Any, Any]) -> None:
    css = await client.get("/static/app.css")
    assert css.status == 200 and "text/css" in css.headers["Content-Type"]
    health = await client.get("/healthz")
    assert health.status == 200
    # One node on its own leads everything; the load balancer reads the role.
    assert await health.json() == {
        "status": "ok", "database": "ok", "node": "local", "role": "leader", "leases": [],
    }  # fmt: skip


def test_mark_public_matches_whole_segments() -> None:
    app = web.Application()
    mark_public(app, "/sms/")
    assert is_public(app, "/sms") and is_public(app, "/sms/inbound")
    assert not is_public(app, "/smsx") and not is_public(app, "/customers")
