"""SLA targets and follow-up rules, with the defaults the hotline starts from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

from crm_core.settings import Settings
from ticketing.states import Priority


@dataclass(frozen=True)
class Targets:
    """Response: someone acts for the customer (resolved by phone, complaint taken up or a
    work order dispatched). Resolution: the work is completed."""

    response: timedelta
    resolution: timedelta


DEFAULT_TARGETS: Mapping[str, Targets] = MappingProxyType(
    {
        Priority.URGENT: Targets(timedelta(minutes=30), timedelta(hours=24)),
        Priority.HIGH: Targets(timedelta(hours=2), timedelta(hours=48)),
        Priority.NORMAL: Targets(timedelta(hours=4), timedelta(hours=72)),
        Priority.LOW: Targets(timedelta(hours=8), timedelta(days=7)),
    }
)


@dataclass(frozen=True)
class Policy:
    targets: Mapping[str, Targets] = field(default_factory=lambda: DEFAULT_TARGETS)
    # A technician who has not accepted (接单) within this long: escalate to the office.
    accept_within: timedelta = timedelta(minutes=60)
    follow_up_due: timedelta = timedelta(hours=48)
    follow_up_retry: timedelta = timedelta(hours=4)
    follow_up_max_attempts: int = 3
    # Usernames of the follow-up pool; empty means active agents (of follow_up_office).
    follow_up_pool: tuple[str, ...] = ()
    follow_up_office: str | None = None
    timezone: str = "Asia/Shanghai"

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        pool = tuple(u.strip() for u in settings.follow_up_pool.split(",") if u.strip())
        return cls(
            accept_within=timedelta(minutes=settings.dispatch_accept_minutes),
            follow_up_due=timedelta(hours=settings.follow_up_due_hours),
            follow_up_retry=timedelta(hours=settings.follow_up_retry_hours),
            follow_up_max_attempts=settings.follow_up_max_attempts,
            follow_up_pool=pool,
            follow_up_office=settings.follow_up_office or None,
            timezone=settings.timezone,
        )

    def due_times(self, priority: str, created_at: datetime) -> tuple[datetime, datetime]:
        target = self.targets[priority]
        return created_at + target.response, created_at + target.resolution
