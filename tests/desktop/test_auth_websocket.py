"""authenticate_websocket: a foreign or missing Origin and a missing session are refused
before the upgrade, and audited."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from desk_world import ORIGIN, World, audit_rows, login_ok

from agent_desktop.common.guards import authenticate_websocket, mark_public
from agent_desktop.server import build_app
from crm_core.db import Database


async def hello(request: web.Request) -> web.WebSocketResponse:
    user = await authenticate_websocket(request)
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_json({"hello": user.username})
    await ws.close()
    return ws


@pytest.fixture
async def ws_client(world: World, aiohttp_client: Any) -> TestClient[Any, Any]:
    app = build_app(Database.open(world.db.settings))
    app.router.add_get("/test-ws", hello)
    # A public twin: the helper alone must refuse a missing session, not only the middleware.
    mark_public(app, "/test-ws-public")
    app.router.add_get("/test-ws-public", hello)
    client: TestClient[Any, Any] = await aiohttp_client(app)
    return client


async def _refused(client: TestClient[Any, Any], path: str, **kwargs: Any) -> int:
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await client.ws_connect(path, **kwargs)
    return caught.value.status


async def test_handshake_with_session_and_our_origin_works(
    ws_client: TestClient[Any, Any],
) -> None:
    await login_ok(ws_client, "agent_east")
    for path in ("/test-ws", "/test-ws-public"):
        ws = await ws_client.ws_connect(path, origin=ORIGIN)
        assert await ws.receive_json() == {"hello": "agent_east"}
        await ws.close()


async def test_foreign_or_missing_origin_is_refused(
    ws_client: TestClient[Any, Any], world: World
) -> None:
    await login_ok(ws_client, "agent_east")
    assert await _refused(ws_client, "/test-ws", origin="https://evil.example") == 403
    assert await _refused(ws_client, "/test-ws") == 403  # no Origin at all
    rows = await audit_rows(world.db, "websocket_refused")
    assert [r.detail["reason"] for r in rows if r.detail] == ["origin", "origin"]
    assert rows[0].user_id == world.users["agent_east"]


async def test_missing_session_is_refused(ws_client: TestClient[Any, Any], world: World) -> None:
    assert await _refused(ws_client, "/test-ws", origin=ORIGIN) == 401  # by the middleware
    assert await _refused(ws_client, "/test-ws-public", origin=ORIGIN) == 401  # by the helper
    ws_client.session.cookie_jar.update_cookies({"hotline_session": "forged-token"})
    assert await _refused(ws_client, "/test-ws-public", origin=ORIGIN) == 401
    rows = await audit_rows(world.db, "websocket_refused")
    assert [r.detail["reason"] for r in rows if r.detail] == ["session", "session"]
    assert all(r.user_id is None and r.ip == "127.0.0.1" for r in rows)


async def test_the_desktop_socket_refuses_permessage_deflate(
    ws_client: TestClient[Any, Any],
) -> None:
    # Chrome offers deflate on every socket; the hub must decline it (a pop's latency, and
    # the compression side channel between caller ID and customer data).
    await login_ok(ws_client, "agent_east")
    ws = await ws_client.ws_connect("/ws", origin=ORIGIN, compress=15)
    assert (await ws.receive_json(timeout=5))["type"] == "hello"
    assert ws.compress == 0
    await ws.close()
