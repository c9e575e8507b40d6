"""What other parts of the product ask about a customer's service requests: the screen pop
(open requests), and the IVR (the latest open request's state, the owner of a request number).
Plain reads; the composition root hands these functions to the CTI side."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from crm_core.db import Database
from ticketing.models import ServiceRequest, WorkOrder
from ticketing.states import RequestState, WorkOrderState

CLOSED_STATES = (
    RequestState.CLOSED.value,
    RequestState.REJECTED.value,
    RequestState.RESOLVED_BY_PHONE.value,
)
MAX_OPEN = 10


async def open_requests(db: Database, customer_id: int) -> list[dict[str, Any]]:
    r = ServiceRequest.__table__
    async with db.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    r.c.id,
                    r.c.number,
                    r.c.category,
                    r.c.priority,
                    r.c.state,
                    r.c.created_at,
                    r.c.resolution_due_at,
                )
                .where(r.c.customer_id == customer_id, r.c.state.not_in(CLOSED_STATES))
                .order_by(r.c.created_at.desc())
                .limit(MAX_OPEN)
            )
        ).all()
    return [
        {
            "id": x.id,
            "number": x.number,
            "category": x.category,
            "priority": x.priority,
            "state": x.state,
            "created_at": x.created_at.isoformat(),
            "resolution_due_at": x.resolution_due_at.isoformat(),
        }
        for x in rows
    ]


async def latest_open_state(db: Database, customer_id: int) -> tuple[str, bool] | None:
    """(state of the newest open request, whether a work order of it waits for parts)."""
    r, w = ServiceRequest.__table__, WorkOrder.__table__
    async with db.connect() as conn:
        row = (
            await conn.execute(
                select(r.c.id, r.c.state)
                .where(r.c.customer_id == customer_id, r.c.state.not_in(CLOSED_STATES))
                .order_by(r.c.created_at.desc())
                .limit(1)
            )
        ).first()
        if row is None:
            return None
        parts = (
            await conn.execute(
                select(w.c.id).where(
                    w.c.request_id == row.id, w.c.state == WorkOrderState.NEEDS_PARTS.value
                )
            )
        ).first()
    return row.state, parts is not None


async def request_by_number(db: Database, number: str) -> tuple[int, int] | None:
    """(customer id, request id) of the request with this number, as keyed on a phone: the
    digits of its number (FW000123 is keyed 123 or 000123), or the number as stored."""
    r = ServiceRequest.__table__
    numbers = {number, number.lstrip("0")}
    if number.isdigit() and len(number) <= 12:
        numbers.add(f"FW{int(number):06d}")
    async with db.connect() as conn:
        found = (
            await conn.execute(select(r.c.customer_id, r.c.id).where(r.c.number.in_(numbers)))
        ).first()
    return None if found is None else (int(found.customer_id), int(found.id))
