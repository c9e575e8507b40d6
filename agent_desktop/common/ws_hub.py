"""The WebSocket hub: each agent's open tabs, and a bounded outbox per tab.

A tab that stops reading must not slow anyone else: messages to it go through its own
queue, and when that queue is full the tab is closed (its browser reconnects and gets the
current state back in the `hello`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

log = logging.getLogger(__name__)
PROTOCOL_VERSION = 1
OUTBOX_LIMIT = 256
MAX_MESSAGE = 16 * 1024
MAX_BAD_MESSAGES = 20
# A message this small cannot fill an empty transport to its pause mark (64 KiB), so a
# direct write of it never waits on flow control.
DIRECT_MAX = 16 * 1024
ClientHandler = Callable[["Connection", dict[str, Any]], Awaitable[dict[str, Any] | None]]
# Hands a message to the other nodes of a cluster (user id, or None for everyone; the text).
Relay = Callable[[int | None, str], None]


@dataclass(eq=False)
class Connection:
    user_id: int
    ws: web.WebSocketResponse
    transport: asyncio.Transport | None = None
    outbox: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(OUTBOX_LIMIT))
    bad_messages: int = 0
    sending: bool = False

    def can_send_now(self, text: str) -> bool:
        """Whether a message may skip the outbox and be written at once.

        Why: a pop through the outbox waits one more turn of the event loop, behind whatever
        else is ready (database writers, 360 builds); that was most of a pop's tail. Only when
        nothing is queued or in flight ahead of it (order holds) and the socket has taken all
        earlier bytes (the write cannot wait on a tab that stopped reading)."""
        return (
            self.outbox.empty()
            and not self.sending
            and self.transport is not None
            and not self.transport.is_closing()
            and self.transport.get_write_buffer_size() == 0
            and len(text) <= DIRECT_MAX
        )

    def offer(self, text: str) -> bool:
        try:
            self.outbox.put_nowait(text)
            return True
        except asyncio.QueueFull:
            return False

    async def pump(self) -> None:
        while True:
            text = await self.outbox.get()
            self.sending = True
            try:
                await self.ws.send_str(text)
            finally:
                self.sending = False


def error(error_id: str, message: str) -> dict[str, Any]:
    return {"v": PROTOCOL_VERSION, "type": "error", "error_id": error_id, "message": message}


class WebSocketHub:
    def __init__(self) -> None:
        self.connections: dict[int, set[Connection]] = {}
        self.handlers: dict[str, ClientHandler] = {}
        self.on_connect: list[Callable[[Connection], Awaitable[list[dict[str, Any]]]]] = []
        self._closing: set[asyncio.Task[bool]] = set()
        # Set on a node of a cluster: what is sent here reaches the user's tabs on other
        # nodes too (agent_desktop/calls/cluster_wiring.py).
        self.relay: Relay | None = None

    def count(self) -> int:
        return sum(len(c) for c in self.connections.values())

    async def send_to_user(self, user_id: int, message: dict[str, Any] | str) -> int:
        """Queue a message to every open tab of the user, on this node and (in a cluster)
        the others; a `str` is JSON already encoded. Returns the tabs reached here."""
        if isinstance(message, str):
            text = message
        else:
            text = json.dumps(message, ensure_ascii=False, default=str)
        sent = await self.send_local(user_id, text)
        if self.relay is not None:
            self.relay(user_id, text)
        return sent

    async def send_local(self, user_id: int, text: str) -> int:
        """Queue a message to the user's tabs open on this node."""
        sent = 0
        for conn in list(self.connections.get(user_id, ())):
            if conn.can_send_now(text):
                try:
                    await conn.ws.send_str(text)
                    sent += 1
                except ConnectionError:
                    pass  # the tab is closing; its own handler forgets it
                continue
            if conn.offer(text):
                sent += 1
            else:
                log.warning("ws: user %s tab is not reading; closing it", user_id)
                self._drop(conn)
        return sent

    def _drop(self, conn: Connection) -> None:
        """Close a stuck tab in the background: a polite close waits on the very peer that
        stopped reading, and must not hold up the fan-out to everyone else."""
        self.connections.get(conn.user_id, set()).discard(conn)
        task = asyncio.create_task(
            conn.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow")
        )
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def broadcast(self, user_ids: set[int] | None, message: dict[str, Any]) -> None:
        if user_ids is not None:
            for user_id in list(user_ids):
                await self.send_to_user(user_id, message)
            return
        text = json.dumps(message, ensure_ascii=False, default=str)
        await self.broadcast_local(text)
        if self.relay is not None:
            self.relay(None, text)  # one message for everyone elsewhere, not one per user

    async def broadcast_local(self, text: str) -> None:
        for user_id in list(self.connections):
            await self.send_local(user_id, text)

    async def serve(self, request: web.Request, user_id: int) -> web.WebSocketResponse:
        # No permessage-deflate: on the call centre's LAN the bytes do not matter, deflating
        # a pop costs the ring a few hundred microseconds of CPU, and compressing a caller's
        # own input (caller ID) beside customer data is the CRIME/BREACH side channel.
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=MAX_MESSAGE, compress=False)
        await ws.prepare(request)
        conn = Connection(user_id, ws, request.transport)
        self.connections.setdefault(user_id, set()).add(conn)
        pump = asyncio.create_task(conn.pump(), name=f"ws-pump-{user_id}")
        try:
            for hook in self.on_connect:
                for message in await hook(conn):
                    conn.offer(json.dumps(message, ensure_ascii=False, default=str))
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                reply = await self._dispatch(conn, msg.data)
                if reply is not None:
                    conn.offer(json.dumps(reply, ensure_ascii=False, default=str))
                if conn.bad_messages > MAX_BAD_MESSAGES:
                    await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"bad messages")
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            self.connections.get(user_id, set()).discard(conn)
            if not self.connections.get(user_id):
                self.connections.pop(user_id, None)
        return ws

    async def _dispatch(self, conn: Connection, data: str) -> dict[str, Any] | None:
        try:
            message = json.loads(data)
        except ValueError:
            conn.bad_messages += 1
            return error("bad_json", "messages are JSON objects")
        if not isinstance(message, dict) or message.get("v") != PROTOCOL_VERSION:
            conn.bad_messages += 1
            return error("bad_version", f'send objects with "v": {PROTOCOL_VERSION}')
        handler = self.handlers.get(str(message.get("type")))
        if handler is None:
            conn.bad_messages += 1
            return error("unknown_type", f"unknown message type {message.get('type')!r}")
        try:
            return await handler(conn, message)
        except Exception:
            log.exception("ws: handler for %s failed", message.get("type"))
            return error("internal", "the server could not handle that message")

    async def close_all(self) -> None:
        for conns in list(self.connections.values()):
            for conn in list(conns):
                await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
