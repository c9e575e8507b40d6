"""Messages between nodes over PostgreSQL LISTEN/NOTIFY.

Every node listens on one channel and publishes on it; a node skips its own messages (it
has acted on them locally already). A NOTIFY payload must stay under 8,000 bytes, so a
larger body is written to `cluster_messages` and only its id is notified; the receivers read
the row. Messages are handled in the order they arrive, by-id ones included (a pop followed
by its withdrawal must not swap places). Sending is off the caller's path: `publish` only
queues, and one sender task per node writes the NOTIFYs in order.

A NOTIFY is delivered only to sessions listening at that moment: a node whose listening
connection is down misses what is sent meanwhile. What must survive that (a pop a
reconnecting desktop should still see) is also in the database, and read from there when
the desktop (re)connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

import crm_core.cluster.pg as pg

log = logging.getLogger(__name__)
CHANNEL = "hotline_fanout"
INLINE_LIMIT = 7_500  # bytes; PostgreSQL refuses payloads of 8,000 and more
SEND_QUEUE = 10_000
RECONNECT_SECONDS = 1.0
Handler = Callable[[Any], Awaitable[None]]


def _setter(event: asyncio.Event) -> Callable[[object], None]:
    return lambda _conn: event.set()


class Fanout:
    def __init__(self, address: str, node: str) -> None:
        self.address = address
        self.node = node
        self.handlers: dict[str, Handler] = {}
        self._outgoing: asyncio.Queue[str] = asyncio.Queue(SEND_QUEUE)
        self._incoming: asyncio.Queue[str] = asyncio.Queue()
        self._ref_reader: asyncpg.Connection | None = None
        self._unsent: str | None = None  # taken off the queue, not yet sent
        self.listening = asyncio.Event()
        self.sent = self.received = self.dropped = 0
        self.last_receive_lag_ms = 0.0

    def publish(self, kind: str, body: Any) -> None:
        """Queue a message for every other node; never waits."""
        text = json.dumps({"o": self.node, "k": kind, "b": body, "t": time.time()})
        try:
            self._outgoing.put_nowait(text)
        except asyncio.QueueFull:
            self.dropped += 1
            log.error("fanout: send queue full (database slow or down); %s dropped", kind)

    async def run(self) -> None:
        """Listen, send and handle until cancelled, reconnecting as needed."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._listen_forever(), name="fanout-listen")
                group.create_task(self._send_forever(), name="fanout-send")
                group.create_task(self._handle_forever(), name="fanout-handle")
        finally:
            if self._ref_reader is not None:
                self._ref_reader.terminate()
                self._ref_reader = None

    # -- listening -------------------------------------------------------------------
    async def _listen_forever(self) -> None:
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await pg.connect(self.address, f"hotline {self.node} listen")
                lost = asyncio.Event()
                conn.add_termination_listener(_setter(lost))
                await conn.add_listener(CHANNEL, self._on_notify)
                self.listening.set()
                await self._watch(conn, lost)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("fanout: listening connection: %s: %s", type(exc).__name__, exc)
            finally:
                self.listening.clear()
                if conn is not None:
                    conn.terminate()
            await asyncio.sleep(RECONNECT_SECONDS)

    async def _watch(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        # A LISTEN session does nothing, so a dead server would go unnoticed: ask it
        # something every second.
        while not lost.is_set():
            async with asyncio.timeout(3.0):
                await conn.fetchval("SELECT 1")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await lost.wait()

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self._incoming.put_nowait(payload)

    async def _handle_forever(self) -> None:
        while True:
            payload = await self._incoming.get()
            try:
                await self._handle(payload)
            except Exception:
                log.exception("fanout: could not handle a message")

    async def _handle(self, payload: str) -> None:
        message = json.loads(payload)
        if message.get("o") == self.node:
            return
        if "ref" in message:
            message = json.loads(await self._read_ref(int(message["ref"])))
        handler = self.handlers.get(str(message.get("k")))
        self.received += 1
        self.last_receive_lag_ms = (time.time() - float(message.get("t", time.time()))) * 1000
        if handler is not None:
            await handler(message.get("b"))

    async def _read_ref(self, ref: int) -> str:
        # Its own connection: the listening one is busy with its liveness query.
        if self._ref_reader is None or self._ref_reader.is_closed():
            self._ref_reader = await pg.connect(self.address, f"hotline {self.node} read")
        try:
            body = await self._ref_reader.fetchval(
                "SELECT body FROM cluster_messages WHERE id = $1", ref
            )
        except Exception:
            self._ref_reader.terminate()
            self._ref_reader = None
            raise
        if body is None:
            raise LookupError(f"fanout: message {ref} is gone")
        return str(body)

    # -- sending ---------------------------------------------------------------------
    async def _send_forever(self) -> None:
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await pg.connect(self.address, f"hotline {self.node} notify")
                while True:
                    if self._unsent is None:
                        self._unsent = await self._outgoing.get()
                    await self._send(conn, self._unsent)
                    self._unsent = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("fanout: sending connection: %s: %s", type(exc).__name__, exc)
            finally:
                if conn is not None:
                    conn.terminate()
            await asyncio.sleep(RECONNECT_SECONDS)

    async def _send(self, conn: asyncpg.Connection, text: str) -> None:
        if len(text.encode()) > INLINE_LIMIT:
            ref = await conn.fetchval(
                "INSERT INTO cluster_messages (body, created_at) VALUES ($1, now()) RETURNING id",
                text,
            )
            text = json.dumps({"o": self.node, "ref": ref})
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, text)
        self.sent += 1
