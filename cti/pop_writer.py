"""Stores screen pops and their receipts, in the order they happened.

It runs on the CTI database thread (cti/db_thread.py): what it is handed is plain data,
copied when the pop changed, so nothing here reads a `Pop` the serving loop is changing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.db import Database
from cti.models import ScreenPop

log = logging.getLogger(__name__)
MAX_BATCH = 500


class PopWriter:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.writes: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def submit(self, kind: str, data: dict[str, Any]) -> None:
        self.writes.put_nowait((kind, data))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pop-writer")

    async def drain(self) -> None:
        await self.writes.join()

    async def stop(self) -> None:
        await self.drain()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            batch = [await self.writes.get()]
            while not self.writes.empty() and len(batch) < MAX_BATCH:
                batch.append(self.writes.get_nowait())
            try:
                async with self.db.transaction() as session:
                    for kind, data in batch:
                        await self._write(session, kind, data)
            except Exception:
                log.exception("pop: could not store %d pop change(s)", len(batch))
            finally:
                for _ in batch:
                    self.writes.task_done()

    @staticmethod
    async def _write(session: AsyncSession, kind: str, data: dict[str, Any]) -> None:
        if kind == "insert":
            session.add(ScreenPop(**data))
            await session.flush()
        elif kind == "state":
            await session.execute(
                update(ScreenPop)
                .where(ScreenPop.id == data["id"])
                .values(state=data["state"], closed_at=data["closed_at"])
            )
        elif kind == "receipt":
            column = "delivered_at" if data["stage"] == "delivered" else "displayed_at"
            await session.execute(
                update(ScreenPop)
                .where(
                    ScreenPop.id == data["pop_id"],
                    ScreenPop.agent_id == data["user_id"],
                    getattr(ScreenPop, column).is_(None),
                )
                .values({column: data["at"]})
            )
