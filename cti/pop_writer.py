"""Stores screen pops and their receipts, in the order they happened.

It runs in the CTI database worker process (cti/db_worker.py): what it is handed is plain
data, copied when the pop changed and sent across, so nothing here reads a live `Pop`.

Core statements, each sent once per batch with all its rows (executemany): CPU here is CPU
the serving process may need on a 2-core machine. The pop's `payload` arrives as JSON
text already (the 360 in it was encoded once per call, when it was built) and is stored as
that text rather than decoded and encoded again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import JSON, Table, Text, bindparam, cast, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert, Update

from crm_core.cluster.fence import Fence
from crm_core.db import Database
from crm_core.models import utcnow
from cti.held_connection import HeldConnection
from cti.models import ScreenPop

log = logging.getLogger(__name__)
MAX_BATCH = 500
POPS: Table = ScreenPop.__table__  # type: ignore[assignment]
INSERTED = ("id", "server", "linkedid", "ring_id", "agent_id", "state", "created_at")
SET_STATE = (
    update(POPS)
    .where(POPS.c.id == bindparam("k_id"))
    .values(state=bindparam("v_state"), closed_at=bindparam("v_closed_at"))
)


def _first_receipt(column: str) -> Update:
    """A receipt only for the pop's own agent, and only the first of its stage counts."""
    return (
        update(POPS)
        .where(
            POPS.c.id == bindparam("k_pop_id"),
            POPS.c.agent_id == bindparam("k_user_id"),
            POPS.c[column].is_(None),
        )
        .values({column: bindparam("v_at")})
    )


RECEIPTS = {
    "delivered": _first_receipt("delivered_at"),
    "displayed": _first_receipt("displayed_at"),
}


def insert_pops(dialect_name: str) -> Insert:
    """The insert, with `payload` bound as the JSON text it already is: as Text, so the JSON
    type's own encoding is skipped. PostgreSQL needs the text cast to its json type; SQLite
    stores JSON as text anyway."""
    text = bindparam("v_payload", type_=Text)
    payload = cast(text, JSON) if dialect_name == "postgresql" else text
    values: dict[str, Any] = {name: bindparam(f"v_{name}") for name in INSERTED}
    return POPS.insert().values({**values, "payload": payload})


def _rounds(batch: Iterable[tuple[str, dict[str, Any]]]) -> list[list[tuple[str, dict[str, Any]]]]:
    """The batch cut so that a pop's changes keep their order: round n holds each pop's n-th
    change. Within a round every pop appears at most once, so its statements can go out
    grouped by kind, in any order."""
    rounds: list[list[tuple[str, dict[str, Any]]]] = []
    seen: dict[str, int] = {}
    for kind, data in batch:
        pop_id = data["pop_id"] if kind == "receipt" else data["id"]
        n = seen.get(pop_id, 0)
        seen[pop_id] = n + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append((kind, data))
    return rounds


class PopWriter:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.writes: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._insert = insert_pops(db.engine.dialect.name)
        self._held = HeldConnection(db.engine)
        self.fence = Fence()  # shared with the call log (cti/db_worker.py)

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
        await self._held.close()

    async def _run(self) -> None:
        while True:
            batch = [await self.writes.get()]
            while not self.writes.empty() and len(batch) < MAX_BATCH:
                batch.append(self.writes.get_nowait())
            try:
                async with self._held.transaction() as conn:
                    await self.fence.check(conn)
                    for changes in _rounds(batch):
                        await self._write_round(conn, changes)
            except Exception:
                log.exception("pop: could not store %d pop change(s)", len(batch))
            finally:
                for _ in batch:
                    self.writes.task_done()

    async def _write_round(
        self, conn: AsyncConnection, changes: list[tuple[str, dict[str, Any]]]
    ) -> None:
        inserts = [self._insert_params(d) for kind, d in changes if kind == "insert"]
        states = [
            {"k_id": d["id"], "v_state": d["state"], "v_closed_at": d["closed_at"]}
            for kind, d in changes
            if kind == "state"
        ]
        receipts: dict[str, list[dict[str, Any]]] = {stage: [] for stage in RECEIPTS}
        for kind, d in changes:
            if kind == "receipt":
                receipts[d["stage"]].append(
                    {"k_pop_id": d["pop_id"], "k_user_id": d["user_id"], "v_at": d["at"]}
                )
        # Each pop appears once in a round (its insert came in an earlier one, if it is
        # changed here), so the order of these statements does not matter.
        for statement, rows in (
            (self._insert, inserts),
            (SET_STATE, states),
            *((RECEIPTS[stage], rows) for stage, rows in receipts.items()),
        ):
            if rows:
                await conn.execute(statement, rows)

    @staticmethod
    def _insert_params(data: dict[str, Any]) -> dict[str, Any]:
        params = {f"v_{name}": data.get(name) for name in INSERTED}
        params["v_created_at"] = data.get("created_at") or utcnow()
        params["v_payload"] = data["payload"]
        return params
