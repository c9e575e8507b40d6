"""What every ticketing service needs, injected once by the composition root."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.db import Database
from crm_core.events import EventBus
from crm_core.models import utcnow
from ticketing.field_links import FieldLinks
from ticketing.notices import Notifier, RecordingNotifier
from ticketing.policy import Policy


@dataclass
class Unit:
    """One transaction: the session, the moment it runs at, and the events to publish after
    it commits (never before: a subscriber must not see a change that may roll back)."""

    session: AsyncSession
    now: datetime
    events: list[object] = field(default_factory=list)


@dataclass
class TicketingContext:
    db: Database
    notify: Notifier = field(default_factory=RecordingNotifier)
    bus: EventBus = field(default_factory=EventBus)
    policy: Policy = field(default_factory=Policy)
    clock: Callable[[], datetime] = utcnow
    # Signs the mobile-page link put in every work-order SMS; None sends no link.
    links: FieldLinks | None = None

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[Unit]:
        async with self.db.transaction() as session:
            work = Unit(session, self.clock())
            yield work
        for event in work.events:
            await self.bus.publish(event)
