"""The event types an endpoint can subscribe to, and how crm_core's domain events become
them. Call events come from cti, which this package may not import: the composition root
translates those (agent_desktop/webhooks) and hands over a `WebhookEvent`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from crm_core.events import FollowUpCreated, SlaBreached, TicketTransitioned, WorkOrderDispatched

EVENT_TYPES = (
    "service_request.created",
    "service_request.state_changed",
    "work_order.dispatched",
    "work_order.accepted",
    "work_order.completed",
    "work_order.state_changed",
    "follow_up.created",
    "follow_up.state_changed",
    "sla.breached",
    "call.answered",
    "call.ended",
)
TEST_EVENT = "webhook.test"  # only the admin's "send test event"; never subscribed to


@dataclass(frozen=True)
class WebhookEvent:
    type: str
    data: dict[str, Any]
    # Set when the same event might be offered twice, so it is stored once per endpoint.
    event_id: str | None = field(default=None)


def _transition(event: TicketTransitioned) -> WebhookEvent:
    data = asdict(event)
    if event.entity == "request":
        kind = "created" if event.from_state is None else "state_changed"
        return WebhookEvent(f"service_request.{kind}", data)
    if event.entity == "work_order":
        kind = {"accepted": "accepted", "done": "completed"}.get(event.to_state, "state_changed")
        return WebhookEvent(f"work_order.{kind}", data)
    return WebhookEvent(f"{event.entity}.state_changed", data)


def from_domain(event: object) -> WebhookEvent | None:
    """The webhook event for a crm_core domain event, or None if integrators don't get it."""
    if isinstance(event, TicketTransitioned):
        return _transition(event)
    if isinstance(event, WorkOrderDispatched):
        return WebhookEvent("work_order.dispatched", asdict(event))
    if isinstance(event, FollowUpCreated):
        return WebhookEvent("follow_up.created", asdict(event))
    if isinstance(event, SlaBreached):
        return WebhookEvent("sla.breached", asdict(event))
    return None


DOMAIN_EVENTS: tuple[type, ...] = (
    TicketTransitioned,
    WorkOrderDispatched,
    FollowUpCreated,
    SlaBreached,
)
