"""One database connection a writer keeps between its batches.

A pool checkout and check-in (with its reset) cost about as much CPU on the CTI database
thread as a statement; a writer that commits a batch every few milliseconds paid that for
every batch. A connection that failed is dropped, and the next batch opens a fresh one.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)


class HeldConnection:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._conn: AsyncConnection | None = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A transaction on the held connection: committed if the block succeeds."""
        if self._conn is None:
            self._conn = await self.engine.connect()
        try:
            async with self._conn.begin():
                yield self._conn
        except BaseException:
            # Whether the connection itself broke or only the statement failed is not
            # worth telling apart on this rare path: start over with a fresh one.
            await self.close()
            raise

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            await conn.close()
        except Exception:
            log.warning("a writer's database connection did not close cleanly", exc_info=True)
