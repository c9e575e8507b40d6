"""The CTI database thread: work handed to it runs there, in order, and its errors come back."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import text

from crm_core.db import Database
from cti.db_thread import DbThread


async def test_work_runs_on_the_thread_with_its_own_engine(db: Database) -> None:
    worker = DbThread(db.settings)
    worker.start()
    try:

        async def where_and_what() -> tuple[int, int]:
            assert worker.db is not None and worker.db is not db
            async with worker.db.connect() as conn:
                one = (await conn.execute(text("SELECT 1"))).scalar_one()
            return threading.get_ident(), one

        ident, one = await worker.run(where_and_what())
        assert ident != threading.get_ident() and one == 1

        seen: list[int] = []
        for n in range(100):
            worker.call_soon(seen.append, n)
        await worker.run(asyncio.sleep(0))  # queued after the 100 appends
        assert seen == list(range(100))

        async def fails() -> None:
            raise ValueError("bad row")

        with pytest.raises(ValueError, match="bad row"):
            await worker.run(fails())
    finally:
        await worker.stop()
    assert worker.loop is None and worker.db is None
    await worker.stop()  # a second stop is harmless
