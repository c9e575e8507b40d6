"""The payload of a screen pop: the caller's customer 360, or the candidates, or nobody.

Built when the call enters, seconds before any agent rings, in the CTI database worker
(cti/db_worker.py) with that process's engine and number lookup.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Integer, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from crm_core.customer360 import customer_360_on
from crm_core.db import Database
from crm_core.lookup import NumberLookup
from cti.models import Call

RECENT_CALLS = 5
# Other packages' part of the 360 (ticketing's open requests), read with the given engine.
Extra = Callable[[Database, int], Awaitable[list[dict[str, Any]]]]


CALLS = Call.__table__
# Built once (see crm_core/customer360.py): the 360 is read for every call.
RECENT_CALLS_QUERY = (
    select(
        CALLS.c.id,
        CALLS.c.direction,
        CALLS.c.entered_at,
        CALLS.c.outcome,
        CALLS.c.talk_seconds,
        CALLS.c.recording_path,
        CALLS.c.disposition,
    )
    .where(
        CALLS.c.customer_id == bindparam("customer_id", type_=Integer),
        CALLS.c.status == "ended",
    )
    .order_by(CALLS.c.entered_at.desc())
    .limit(RECENT_CALLS)
)


class Pop360Builder:
    def __init__(self, db: Database, finder: NumberLookup, open_requests: Extra | None) -> None:
        self.db = db
        self.finder = finder
        self.open_requests = open_requests

    async def _payload_for_customer(self, customer_id: int) -> dict[str, Any] | None:
        # One connection for the CRM part and the calls: a checkout is a round trip or two
        # to the driver, on the thread that shares the GIL with the pops.
        async with self.db.connect() as conn:
            snapshot = await customer_360_on(conn, customer_id)
            if snapshot is None:
                return None
            snapshot["recent_calls"] = await self._recent_calls(conn, customer_id)
        if self.open_requests is not None:
            snapshot["open_requests"] = await self.open_requests(self.db, customer_id)
        return {"match": "customer", "customer_360": snapshot}

    @staticmethod
    async def _recent_calls(conn: AsyncConnection, customer_id: int) -> list[dict[str, Any]]:
        rows = (await conn.execute(RECENT_CALLS_QUERY, {"customer_id": customer_id})).all()
        return [
            {
                "id": r.id,
                "direction": r.direction,
                "at": r.entered_at.isoformat(),
                "outcome": r.outcome,
                "talk_seconds": r.talk_seconds,
                "has_recording": bool(r.recording_path),
                "disposition": r.disposition,
            }
            for r in rows
        ]

    async def build(self, caller: str, customer_id: int | None) -> dict[str, Any]:
        if customer_id is not None:
            found = await self._payload_for_customer(customer_id)
            if found is not None:
                return found
        candidates = await self.finder.find(caller)
        customers = {c.customer_id for c in candidates}
        if len(customers) == 1:
            found = await self._payload_for_customer(customers.pop())
            if found is not None:
                found["candidates"] = [c.as_dict() for c in candidates]
                return found
        if candidates:
            return {"match": "candidates", "candidates": [c.as_dict() for c in candidates]}
        return {"match": "unknown", "number": caller}
