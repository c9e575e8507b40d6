"""The delivery outbox: publishing an event writes one row per subscribed, active endpoint.

The body is rendered once, here, and stored: every attempt sends (and signs) the same bytes
under the same delivery id, so a receiver can dedupe on X-Hotline-Delivery.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.db import Database
from crm_core.models import utcnow
from webhooks.events import TEST_EVENT, WebhookEvent
from webhooks.models import WebhookDelivery, WebhookEndpoint

PENDING, SENDING, DELIVERED, FAILED = "pending", "sending", "delivered", "failed"


def render_body(event_id: str, event: WebhookEvent) -> str:
    payload = {
        "id": event_id,
        "type": event.type,
        "created_at": utcnow().isoformat(),
        "data": event.data,
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)


def _subscribed(endpoint: WebhookEndpoint, event_type: str) -> bool:
    return endpoint.active and event_type in (endpoint.events or [])


async def _insert(
    session: AsyncSession, endpoint_id: int, event_id: str, event: WebhookEvent, body: str
) -> None:
    now = utcnow()
    values: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "endpoint_id": endpoint_id,
        "event_id": event_id,
        "event_type": event.type,
        "body": body,
        "state": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(WebhookDelivery).values(**values)
    await session.execute(
        statement.on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"])
    )


async def enqueue(db: Database, event: WebhookEvent) -> int:
    """Store the event for every endpoint that wants it; returns how many rows were written."""
    event_id = event.event_id or str(uuid.uuid4())
    body = render_body(event_id, event)
    async with db.transaction() as session:
        endpoints = (await session.scalars(select(WebhookEndpoint))).all()
        wanted = [e.id for e in endpoints if _subscribed(e, event.type)]
        for endpoint_id in wanted:
            await _insert(session, endpoint_id, event_id, event, body)
    return len(wanted)


async def enqueue_test(db: Database, endpoint_id: int) -> str:
    """The admin's "send test event": one delivery to this endpoint, active or not."""
    event_id = str(uuid.uuid4())
    event = WebhookEvent(TEST_EVENT, {"endpoint_id": endpoint_id, "message": "test"}, event_id)
    async with db.transaction() as session:
        await _insert(session, endpoint_id, event_id, event, render_body(event_id, event))
        found = await session.scalar(
            select(WebhookDelivery.uuid).where(
                WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.event_id == event_id
            )
        )
    assert found is not None
    return found


async def redeliver(session: AsyncSession, delivery: WebhookDelivery) -> None:
    """Send again, same body and delivery id (a receiver that dedupes will ignore it)."""
    delivery.state = PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = utcnow()
    delivery.claimed_by = None
    delivery.claimed_until = None
