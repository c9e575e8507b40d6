"""Transition records: who, when, from, to, why. Written in the transaction of the change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.events import TicketTransitioned
from ticketing.models import Transition


@dataclass(frozen=True)
class Actor:
    """Who caused a change: a logged-in user, a technician's SMS, the IVR or the system."""

    user_id: int | None
    label: str

    @classmethod
    def user(cls, user_id: int) -> Actor:
        return cls(user_id, f"user:{user_id}")

    @classmethod
    def sms(cls, user_id: int, e164: str) -> Actor:
        return cls(user_id, f"sms:{e164}")

    @classmethod
    def field_link(cls, user_id: int) -> Actor:
        """A technician acting through the signed link of the mobile page."""
        return cls(user_id, f"mobile:{user_id}")

    @classmethod
    def system(cls, what: str = "system") -> Actor:
        return cls(None, what)


async def record(
    session: AsyncSession,
    *,
    request_id: int,
    entity: str,
    entity_id: int,
    action: str,
    from_state: str | None,
    to_state: str,
    actor: Actor,
    at: datetime,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> TicketTransitioned:
    """Store one transition; return the event to publish once the transaction commits."""
    session.add(
        Transition(
            request_id=request_id,
            entity=entity,
            entity_id=entity_id,
            action=action,
            from_state=from_state,
            to_state=to_state,
            user_id=actor.user_id,
            actor=actor.label,
            reason=reason,
            detail=detail,
            at=at,
        )
    )
    return TicketTransitioned(
        request_id, entity, entity_id, action, from_state, to_state, actor.user_id
    )
