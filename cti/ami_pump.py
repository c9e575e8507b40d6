"""The ordered consumer: one per server, handling its events strictly in wire order.

Why one consumer and not a task per event: AMI is the only ordering we get (a call's
``AgentCalled`` must be handled before its ``AgentConnect``), and a task per event would let a
slow async handler be overtaken. The price: a handler that awaits slowly delays every later
event of that server, so handlers should hand long work off (bus, task) and return.

An event that arrives while the pump is idle is handled at once, inside the reader's own
callback, rather than queued for the consumer task: a queue hop is one more turn of the event
loop, and each turn gives the GIL up to whatever thread is busy (then, the CTI database
thread), so under load it cost a screen pop more than all of its own logic. Order is kept: while one
event's handler is still suspended, or anything is queued, new events queue behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from cti.ami_types import AmiEvent, ResyncSnapshot

log = logging.getLogger(__name__)

EventHandler = Callable[[AmiEvent], Awaitable[None] | None]
ResyncHandler = Callable[[str, ResyncSnapshot], Awaitable[None] | None]
YIELD_EVERY = 64  # let the reader (and Ping replies) run even while a backlog drains
EAGER_PER_TURN = YIELD_EVERY  # events handled inline per turn of the loop; the rest queue
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
        self._busy = False  # the consumer task is between taking an item and finishing it
        self._suspended: asyncio.Task[None] | None = None  # an inline handler left waiting
        self._eager_left = EAGER_PER_TURN
        self.handled = 0
        self.handler_errors = 0

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing being handled."""
        suspended = self._suspended
        in_progress = self._busy or (suspended is not None and not suspended.done())
        return not in_progress and self._queue.empty()

    def put(self, item: AmiEvent | ResyncSlot) -> None:
        if isinstance(item, AmiEvent) and self._take_inline_turn():
            self._run_inline(item)
            return
        self._queue.put_nowait(item)
        if not self._over_high_water and self._queue.qsize() > HIGH_WATER:
            self._over_high_water = True
            log.warning("AMI %s: %d events waiting for handlers", self.server, HIGH_WATER)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"ami-pump-{self.server}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        suspended, self._suspended = self._suspended, None
        for running in (task, suspended):
            if running is not None:
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running

    def _take_inline_turn(self) -> bool:
        """Whether `put` may handle an event inline now; uses one of this turn's slots."""
        if self._task is None or not self.idle:
            return False
        if self._eager_left == EAGER_PER_TURN:  # the first this turn: refill on the next
            asyncio.get_running_loop().call_soon(self._refill)
        if self._eager_left <= 0:
            return False
        self._eager_left -= 1
        return True

    def _refill(self) -> None:
        self._eager_left = EAGER_PER_TURN

    def _run_inline(self, event: AmiEvent) -> None:
        """Handle `event` now. A handler that finishes without waiting (a pop, most events)
        is done when this returns; one that has to wait goes on in a task, and everything
        after it queues until that task is done."""
        self.handled += 1
        try:
            result = self._on_event(event)
            if not inspect.isawaitable(result):
                return
            coroutine = _as_coroutine(result)
            waiting_on = coroutine.send(None)
        except StopIteration:
            return
        except Exception:
            self.handler_errors += 1
            log.exception("AMI %s: handler %r failed", self.server, self._on_event)
            return
        self._suspended = asyncio.get_running_loop().create_task(
            self._guarded(_resume, coroutine, waiting_on)
        )

    async def _run(self) -> None:
        since_yield = 0
        while True:
            item = await self._queue.get()
            self._busy = True
            suspended, self._suspended = self._suspended, None
            if suspended is not None:  # an event before this one is still being handled
                await asyncio.wait([suspended])
            if isinstance(item, ResyncSlot):
                snapshot = await item.wait()
                if snapshot is not None and self._on_resync is not None:
                    await self._guarded(self._on_resync, self.server, snapshot)
            else:
                await self._guarded(self._on_event, item)
                self.handled += 1
            self._busy = False
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


def _as_coroutine(awaitable: Awaitable[None]) -> Coroutine[Any, Any, None]:
    if inspect.iscoroutine(awaitable):
        return awaitable

    async def wrapper() -> None:
        await awaitable

    return wrapper()


async def _resume(coroutine: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    """Go on with a coroutine that was started outside a task and is now waiting on
    `waiting_on` (what it yielded): the stepping asyncio.Task does, for the rest of its run.
    A future is waited for and then the coroutine resumed, as a task would; None is a bare
    yield (asyncio.sleep(0)). Cancelling this cancels the coroutine where it waits."""
    try:
        while True:
            if waiting_on is None:
                await asyncio.sleep(0)
            else:
                waiting_on._asyncio_future_blocking = False  # as Task.__step does
                try:
                    await asyncio.wait([waiting_on])
                except asyncio.CancelledError:
                    waiting_on.cancel()
                    with contextlib.suppress(BaseException):  # let it clean up, then end it
                        coroutine.throw(asyncio.CancelledError())
                    coroutine.close()
                    raise
            waiting_on = coroutine.send(None)
    except StopIteration:
        return
