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
    # The merge being undone (issue #17): followers put back what they moved for it.
    merge_change_id: int | None = None


# --- ticketing (issue 6) ---


@dataclass(frozen=True)
class TicketTransitioned:
    """A service request, work order or follow-up changed state (already committed)."""

    request_id: int
    entity: str
    entity_id: int
    action: str
    from_state: str | None
    to_state: str
    user_id: int | None


@dataclass(frozen=True)
class WorkOrderDispatched:
    work_order_id: int
    request_id: int
    technician_id: int
    office: str | None


@dataclass(frozen=True)
class FollowUpCreated:
    follow_up_id: int
    request_id: int
    assignee_id: int


@dataclass(frozen=True)
class SlaBreached:
    """An SLA target passed; desktops show a reminder, dispatch overdue escalates by SMS."""

    kind: str
    request_id: int
    entity: str
    entity_id: int
    office: str | None
    due_at: str


# --- sms_gateway (issue 6) ---


@dataclass(frozen=True)
class SmsStatusChanged:
    message_id: int
    provider_sid: str
    status: str
    request_id: int | None


# --- cti FastAGI (IVR) ---


@dataclass(frozen=True)
class SurveyAnswered:
    """A caller's post-call satisfaction score (1 worst to 5 best), published by cti's FastAGI
    survey handler. `linkedid` is the call key (the caller leg's Uniqueid)."""

    linkedid: str
    uniqueid: str
    score: int
    caller: str


# --- calls <-> service requests (docs/architecture.md: "A call and its request") ---
@dataclass(frozen=True)
class CallLinkRequested:
    """Someone says a call belongs to a service request: ticketing when a request is opened
    from a call (its `call_linkedid`), the IVR when the caller keys a request number. cti
    applies it to the call log and answers with CallLinkedToRequest."""

    request_id: int
    linkedid: str


@dataclass(frozen=True)
class CallLinkedToRequest:
    """The call log now says this call belongs to that request (published by cti after the
    row is written); recordings follows it, so the call's recording belongs there too."""

    call_id: int
    server: str
    linkedid: str
    request_id: int


# --- cti call log -> recordings (and anyone indexing finished calls) ---
@dataclass(frozen=True)
class CallRecordingFinished:
    """A recorded call has ended and its call-log row is final. `path` is as Asterisk wrote
    it (inside the PBX root); MixMonitor may still be closing the file for a moment."""

    call_id: int
    server: str
    linkedid: str
    path: str
    direction: str
    customer_id: int | None
    agent_id: int | None
    queue: str | None
    service_request_id: int | None
    answered_at: str | None  # ISO 8601 UTC
    ended_at: str
    talk_seconds: float | None
