"""The ordered consumer: one per server, handling its events strictly in wire order.

Why one consumer and not a task per event: AMI is the only ordering we get (a call's
``AgentCalled`` must be handled before its ``AgentConnect``), and a task per event would let a
slow async handler be overtaken. The price: a handler that awaits slowly delays every later
event of that server, so handlers should hand long work off (bus, task) and return.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable

from cti.ami_types import AmiEvent, ResyncSnapshot

log = logging.getLogger(__name__)

EventHandler = Callable[[AmiEvent], Awaitable[None] | None]
ResyncHandler = Callable[[str, ResyncSnapshot], Awaitable[None] | None]
YIELD_EVERY = 64  # let the reader (and Ping replies) run even while a backlog drains
HIGH_WATER = 10_000


class ResyncSlot:
    """A place in the event stream where the resync snapshot belongs.

    It is queued when the resync starts, so the snapshot is handled before every event received
    after that point (re-applying those is harmless; missing them would leave stale state)."""

    def __init__(self) -> None:
        self._future: asyncio.Future[ResyncSnapshot | None] = (
            asyncio.get_running_loop().create_future()
        )

    def fill(self, snapshot: ResyncSnapshot | None) -> None:
        if not self._future.done():
            self._future.set_result(snapshot)

    async def wait(self) -> ResyncSnapshot | None:
        return await self._future


class EventPump:
    def __init__(
        self, server: str, on_event: EventHandler, on_resync: ResyncHandler | None
    ) -> None:
        self.server = server
        self._on_event = on_event
        self._on_resync = on_resync
        self._queue: asyncio.Queue[AmiEvent | ResyncSlot] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._over_high_water = False
        self.handled = 0
        self.handler_errors = 0

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    def put(self, item: AmiEvent | ResyncSlot) -> None:
        self._queue.put_nowait(item)
        if not self._over_high_water and self._queue.qsize() > HIGH_WATER:
            self._over_high_water = True
            log.warning("AMI %s: %d events waiting for handlers", self.server, HIGH_WATER)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"ami-pump-{self.server}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        since_yield = 0
        while True:
            item = await self._queue.get()
            if isinstance(item, ResyncSlot):
                snapshot = await item.wait()
                if snapshot is not None and self._on_resync is not None:
                    await self._guarded(self._on_resync, self.server, snapshot)
            else:
                await self._guarded(self._on_event, item)
                self.handled += 1
            since_yield += 1
            if since_yield >= YIELD_EVERY:
                since_yield = 0
                await asyncio.sleep(0)
            if self._over_high_water and self._queue.qsize() < HIGH_WATER // 2:
                self._over_high_water = False

    async def _guarded(self, handler: Callable[..., Awaitable[None] | None], *args: object) -> None:
        """A raising handler is logged and skipped: it cannot drop the link or later events."""
        try:
            result = handler(*args)
            if inspect.isawaitable(result):
                await result
        except Exception:
            self.handler_errors += 1
            log.exception("AMI %s: handler %r failed", self.server, handler)
