"""The WebSocket hub over real sockets: order per tab, and a tab that stops reading loses
its own connection without holding up anyone else's messages."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient

from agent_desktop.common.ws_hub import DIRECT_MAX, Connection, WebSocketHub


class Hub(WebSocketHub):
    """The hub, telling the test when each user's tab is registered."""

    def __init__(self) -> None:
        super().__init__()
        self.joined: dict[int, asyncio.Event] = {1: asyncio.Event(), 2: asyncio.Event()}

        async def joined(conn: Connection) -> list[dict[str, Any]]:
            self.joined[conn.user_id].set()
            return []

        self.on_connect.append(joined)


async def _client(aiohttp_client: Any) -> tuple[Hub, TestClient[Any, Any]]:
    hub = Hub()

    async def handler(request: web.Request) -> web.StreamResponse:
        return await hub.serve(request, int(request.query["user"]))

    app = web.Application()
    app.router.add_get("/ws", handler)
    client: TestClient[Any, Any] = await aiohttp_client(app)
    return hub, client


async def _connected(hub: Hub, user_id: int) -> None:
    await asyncio.wait_for(hub.joined[user_id].wait(), 5)


async def test_messages_keep_their_order_whether_written_at_once_or_queued(
    aiohttp_client: Any,
) -> None:
    hub, client = await _client(aiohttp_client)
    ws = await client.ws_connect("/ws?user=1")
    await _connected(hub, 1)
    # The big one goes through the outbox; the small ones after it must not overtake it.
    big = {"n": 0, "pad": "x" * (DIRECT_MAX + 1)}
    await hub.send_to_user(1, big)
    for n in range(1, 50):
        await hub.send_to_user(1, {"n": n})
    received = [json.loads((await ws.receive(timeout=5)).data)["n"] for _ in range(50)]
    assert received == list(range(50))
    await ws.close()


async def test_a_tab_that_stops_reading_is_closed_and_others_still_get_theirs(
    aiohttp_client: Any,
) -> None:
    hub, client = await _client(aiohttp_client)
    stuck = await client.ws_connect("/ws?user=1", max_msg_size=0)
    other = await client.ws_connect("/ws?user=2")
    await _connected(hub, 1)
    await _connected(hub, 2)
    chunk = "y" * (DIRECT_MAX - 100)
    # The stuck tab never reads: first the kernel's buffers fill, then the transport's, then
    # its outbox; the hub must then close it rather than wait. Bounded, so a hang fails.
    async with asyncio.timeout(30):
        for n in range(4000):
            if not hub.connections.get(1):
                break
            await hub.send_to_user(1, {"n": n, "pad": chunk})
            await asyncio.sleep(0)
    assert not hub.connections.get(1), "the tab that stopped reading is still served"
    assert await hub.send_to_user(2, {"hello": "still here"}) == 1
    message = await other.receive(timeout=5)
    assert message.type is WSMsgType.TEXT and json.loads(message.data) == {"hello": "still here"}
    await other.close()
    stuck_close = None
    while stuck_close is None or stuck_close.type is WSMsgType.TEXT:
        stuck_close = await stuck.receive(timeout=10)
    assert stuck_close.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
