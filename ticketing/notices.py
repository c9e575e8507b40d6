"""How ticketing asks for an SMS without knowing how SMS is sent.

The dependency rule forbids importing sms_gateway here, yet an SMS must be stored in the same
transaction as the change that caused it. So the composition root injects a `Notifier`: an
async callable that writes the message into the outbox through the *same session*. Ticketing
names a template and its parameters; sms_gateway owns the wording and the segment budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class SmsNotice:
    to: str
    template: str
    params: Mapping[str, str]
    # Idempotency key: the same key is stored once, so a retried transaction or a repeated
    # command never queues a second copy.
    key: str
    request_id: int | None = None


class Notifier(Protocol):
    async def __call__(self, session: AsyncSession, notice: SmsNotice) -> None: ...


@dataclass
class RecordingNotifier:
    """Keeps notices in memory; for tests and for running ticketing without SMS."""

    notices: list[SmsNotice] = field(default_factory=list)

    async def __call__(self, session: AsyncSession, notice: SmsNotice) -> None:
        self.notices.append(notice)
