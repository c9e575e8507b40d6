"""Delivery status from provider callbacks: stored once each, and never moving backwards.

Callbacks may come twice, out of order, or before the worker has even recorded the SID (the
provider can call back faster than our commit). Each one is stored by (sid, status); the
message's status is the highest-ranked one seen, whichever order they came in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from sms_gateway.models import SmsMessage, SmsStatusEvent

RANK = {
    "accepted": 1,
    "scheduled": 1,
    "queued": 2,
    "sending": 3,
    "sent": 4,
    "delivered": 6,
    "undelivered": 6,
    "failed": 6,
    "canceled": 6,
    "read": 7,
}
KNOWN = frozenset(RANK)


def rank(status: str | None) -> int:
    return RANK.get(status or "", 0)


def later(current: str | None, incoming: str) -> bool:
    """Whether `incoming` moves the status forward. Equal rank keeps the first final word."""
    return rank(incoming) > rank(current)


async def store_event(
    session: AsyncSession,
    sid: str,
    status: str,
    error_code: str | None,
    raw: dict[str, Any] | None,
    now: datetime,
) -> None:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(
        insert(SmsStatusEvent)
        .values(provider_sid=sid, status=status, error_code=error_code, raw=raw, received_at=now)
        .on_conflict_do_nothing(index_elements=["provider_sid", "status"])
    )


async def best_status(session: AsyncSession, sid: str, current: str | None) -> str | None:
    """The highest-ranked status among `current` and every stored callback for `sid`."""
    statuses = (
        await session.scalars(
            select(SmsStatusEvent.status).where(SmsStatusEvent.provider_sid == sid)
        )
    ).all()
    best = current
    for status in statuses:
        if later(best, status):
            best = status
    return best


async def apply_callback(
    session: AsyncSession,
    sid: str,
    status: str,
    error_code: str | None,
    raw: dict[str, Any] | None,
    now: datetime,
) -> SmsMessage | None:
    """Store the callback and move the message forward if it ranks higher. Returns the message
    when its status changed."""
    status = status.lower()
    await store_event(session, sid, status, error_code, raw, now)
    message = await session.scalar(
        select(SmsMessage).where(SmsMessage.provider_sid == sid).with_for_update()
    )
    if message is None or not later(message.provider_status, status):
        return None
    message.provider_status = status
    message.status_at = now
    if status in ("undelivered", "failed") and error_code:
        message.error = f"provider error {error_code}"
    return message
