"""The payload of a screen pop: the caller's customer 360, or the candidates, or nobody.

Built when the call enters, seconds before any agent rings, on the CTI database thread
(see cti/db_thread.py) with that thread's engine and number lookup.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select

from crm_core.customer360 import customer_360
from crm_core.db import Database
from crm_core.lookup import NumberLookup
from cti.models import Call

RECENT_CALLS = 5
# Other packages' part of the 360 (ticketing's open requests), read with the given engine.
Extra = Callable[[Database, int], Awaitable[list[dict[str, Any]]]]


class Pop360Builder:
    def __init__(self, db: Database, finder: NumberLookup, open_requests: Extra | None) -> None:
        self.db = db
        self.finder = finder
        self.open_requests = open_requests

    async def _payload_for_customer(self, customer_id: int) -> dict[str, Any] | None:
        snapshot = await customer_360(self.db, customer_id)
        if snapshot is None:
            return None
        snapshot["recent_calls"] = await self._recent_calls(customer_id)
        if self.open_requests is not None:
            snapshot["open_requests"] = await self.open_requests(self.db, customer_id)
        return {"match": "customer", "customer_360": snapshot}

    async def _recent_calls(self, customer_id: int) -> list[dict[str, Any]]:
        calls = Call.__table__
        async with self.db.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        calls.c.id,
                        calls.c.direction,
                        calls.c.entered_at,
                        calls.c.outcome,
                        calls.c.talk_seconds,
                        calls.c.recording_path,
                        calls.c.disposition,
                    )
                    .where(calls.c.customer_id == customer_id, calls.c.status == "ended")
                    .order_by(calls.c.entered_at.desc())
                    .limit(RECENT_CALLS)
                )
            ).all()
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

