"""A thread with its own event loop and database engine, for the writers that follow calls.

Why: the call log and the pop rows were written on the event loop that reads AMI and sends
pops. SQLAlchemy's work runs between awaits in steps of 0.3-6 ms, and a ring that arrived
during one waited for it: at 50 calls/s that was most of the pop's p99. Here the writers
only compete for the GIL, which the serving loop gets back within the interpreter's switch
interval (`serve` shortens it).

Everything a writer needs lives on this thread's loop: its own `Database` (an engine is tied
to the loop that uses it), directory and number lookup. The serving loop talks to it only
through `call_soon` (fire and forget) and `run` (await a result).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from crm_core.db import Database
from crm_core.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


class DbThread:
    def __init__(self, settings: Settings, name: str = "cti-db") -> None:
        self.settings = settings
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self.db: Database | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        ready = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self.loop = loop
            self.db = Database.open(self.settings)
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=main, name=self.name, daemon=True)
        self._thread.start()
        ready.wait()

    def call_soon(self, fn: Callable[..., object], *args: object) -> None:
        """Run `fn(*args)` on the thread's loop, in submission order."""
        assert self.loop is not None, "DbThread.start() first"
        self.loop.call_soon_threadsafe(fn, *args)

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the thread's loop and wait for its result here."""
        assert self.loop is not None, "DbThread.start() first"
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def stop(self) -> None:
        """Close the engine on its own loop, then end the loop and the thread."""
        thread, loop, db = self._thread, self.loop, self.db
        if thread is None or loop is None:
            return
        try:
            if db is not None:
                await self.run(db.close())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            await asyncio.to_thread(thread.join)
            self._thread = self.loop = self.db = None
