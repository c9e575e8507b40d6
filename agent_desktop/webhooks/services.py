"""Webhook endpoints in 系统管理: create (the secret is shown once), edit, rotate the secret,
send a test event, the delivery log and redeliver.

Every change writes one change record (before/after, never the secret) and one audit row in
its own transaction, like the other admin changes (admin/changes.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.db import Database
from crm_core.errors import NotFound, ValidationError
from crm_core.models import AuditEntry, ChangeRecord, utcnow
from webhooks import outbox
from webhooks.events import EVENT_TYPES
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.signing import new_secret

ENTITY = "webhook_endpoint"
LOG_LIMIT = 200


class Who(Protocol):
    """Who makes the change (admin/actor.py's Actor, by shape: features do not import each
    other)."""

    @property
    def user_id(self) -> int | None: ...
    @property
    def name(self) -> str: ...
    @property
    def ip(self) -> str | None: ...
    @property
    def via(self) -> str: ...


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def view(row: WebhookEndpoint) -> dict[str, Any]:
    """Everything but the secret."""
    return {
        "id": row.id,
        "name": row.name,
        "url": row.url,
        "events": list(row.events or []),
        "active": row.active,
        "disabled_reason": row.disabled_reason,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


def delivery_view(row: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": row.id,
        "delivery_id": row.uuid,
        "event_id": row.event_id,
        "event_type": row.event_type,
        "state": row.state,
        "attempts": row.attempts,
        "last_status": row.last_status,
        "last_error": row.last_error,
        "response_excerpt": row.response_excerpt,
        "next_attempt_at": _iso(row.next_attempt_at) if row.state == outbox.PENDING else None,
        "created_at": _iso(row.created_at),
        "last_attempt_at": _iso(row.last_attempt_at),
        "delivered_at": _iso(row.delivered_at),
    }


def valid_url(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 2000:
        raise ValidationError("url must be an http or https URL", field="url")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("url must be an http or https URL with a host", field="url")
    if parts.username or parts.password:
        raise ValidationError("url must not carry credentials", field="url")
    return value.strip()


def valid_events(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValidationError("events must be a non-empty list of event types", field="events")
    unknown = sorted(set(value) - set(EVENT_TYPES))
    if unknown:
        raise ValidationError(
            f"unknown event type(s): {', '.join(unknown)}", field="events", known=EVENT_TYPES
        )
    return sorted(set(value))


def valid_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 100:
        raise ValidationError("name must be 1-100 characters", field="name")
    return value.strip()


async def _log(
    session: AsyncSession,
    actor: Who,
    row: WebhookEndpoint,
    action: str,
    before: dict[str, Any] | None,
) -> None:
    after = view(row)
    fields = sorted(k for k in after if (before or {}).get(k) != after.get(k))
    session.add(
        ChangeRecord(
            entity=ENTITY,
            entity_id=row.id,
            action=action,
            before=before,
            after=after,
            user_id=actor.user_id,
            note=f"{action} by {actor.name} via {actor.via}"[:300],
        )
    )
    session.add(
        AuditEntry(
            user_id=actor.user_id,
            action=f"admin_{ENTITY}_{action}"[:50],
            object_type=ENTITY,
            object_id=str(row.id),
            ip=actor.ip,
            detail={"by": actor.name, "via": actor.via, "fields": fields},
        )
    )
    await session.flush()


async def _endpoint(session: AsyncSession, endpoint_id: int) -> WebhookEndpoint:
    row = await session.get(WebhookEndpoint, endpoint_id)
    if row is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return row


async def list_endpoints(db: Database) -> list[dict[str, Any]]:
    async with db.transaction() as session:
        rows = await session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id))
        return [view(r) for r in rows.all()]


async def create_endpoint(
    db: Database, actor: Who, values: Mapping[str, Any]
) -> tuple[dict[str, Any], str]:
    """A new endpoint; returns its view and its secret, shown this once."""
    name, url = valid_name(values.get("name")), valid_url(values.get("url"))
    events = valid_events(values.get("events"))
    secret = new_secret()
    async with db.transaction() as session:
        now = utcnow()
        row = WebhookEndpoint(
            name=name,
            url=url,
            secret=secret,
            events=events,
            active=values.get("active", True) is not False,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        await session.flush()
        await _log(session, actor, row, "create", None)
        return view(row), secret


async def update_endpoint(
    db: Database, actor: Who, endpoint_id: int, values: Mapping[str, Any]
) -> dict[str, Any]:
    checks = {"name": valid_name, "url": valid_url, "events": valid_events}
    changes: dict[str, Any] = {k: check(values[k]) for k, check in checks.items() if k in values}
    if "active" in values:
        active = {"true": True, "false": False}.get(str(values["active"]).lower())
        if active is None:
            raise ValidationError("active must be true or false", field="active")
        changes["active"] = active
    async with db.transaction() as session:
        row = await _endpoint(session, endpoint_id)
        before = view(row)
        for key, value in changes.items():
            setattr(row, key, value)
        if changes.get("active"):
            row.disabled_reason = None
        row.updated_at = utcnow()
        await _log(session, actor, row, "update", before)
        return view(row)


async def rotate_secret(db: Database, actor: Who, endpoint_id: int) -> str:
    secret = new_secret()
    async with db.transaction() as session:
        row = await _endpoint(session, endpoint_id)
        before = view(row)
        row.secret, row.updated_at = secret, utcnow()
        await _log(session, actor, row, "rotate_secret", before)
    return secret


async def send_test(db: Database, endpoint_id: int) -> str:
    async with db.transaction() as session:
        await _endpoint(session, endpoint_id)
    return await outbox.enqueue_test(db, endpoint_id)


async def deliveries(db: Database, endpoint_id: int) -> list[dict[str, Any]]:
    async with db.transaction() as session:
        await _endpoint(session, endpoint_id)
        rows = await session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(LOG_LIMIT)
        )
        return [delivery_view(r) for r in rows.all()]


async def redeliver(db: Database, actor: Who, delivery_id: int) -> dict[str, Any]:
    async with db.transaction() as session:
        row = await session.get(WebhookDelivery, delivery_id)
        if row is None:
            raise NotFound(f"no webhook delivery {delivery_id}")
        if row.state == outbox.SENDING:
            raise ValidationError("this delivery is being sent now", field="state")
        await outbox.redeliver(session, row)
        session.add(
            AuditEntry(
                user_id=actor.user_id,
                action="admin_webhook_redeliver",
                object_type="webhook_delivery",
                object_id=str(row.id),
                ip=actor.ip,
                detail={"by": actor.name, "via": actor.via, "delivery": row.uuid},
            )
        )
        await session.flush()
        return delivery_view(row)
