"""The in-process domain event bus. Packages talk through it instead of importing each other.

Events are frozen dataclasses. A handler that raises is logged and does not stop the others:
one broken subscriber must not cost the rest their events.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger(__name__)

E = TypeVar("E")
Handler = Callable[[Any], Awaitable[None] | None]


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[type, list[Handler]] = defaultdict(list)

    def subscribe(
        self, event_type: type[E], handler: Callable[[E], Awaitable[None] | None]
    ) -> None:
        self._handlers[event_type].append(handler)

    async def publish(self, event: object) -> None:
        for handler in list(self._handlers.get(type(event), ())):
            try:
                result = handler(event)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("event handler %r failed on %r", handler, event)


@dataclass(frozen=True)
class CustomerChanged:
    customer_id: int
    action: str


@dataclass(frozen=True)
class CustomersMerged:
    source_id: int
    target_id: int
    change_id: int


@dataclass(frozen=True)
class CustomersUnmerged:
    source_id: int
    target_id: int
    change_id: int
