"""Typed, frozen domain events the call tracker publishes on the bus.

`at` is the PBX's own event time (AMI `Timestamp`, epoch seconds) so that call-log times do
not depend on how late we processed an event.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Outcome(enum.StrEnum):
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    MISSED = "missed"
    TRANSFERRED = "transferred"
    FAILED = "failed"
    UNKNOWN = "unknown"  # recovered after an AMI outage without a record of how it went


@dataclass(frozen=True)
class CallStarted:
    server: str
    linkedid: str
    direction: Direction
    caller: str  # the customer's number as the PBX gave it (caller ID, or the dialled number)
    caller_name: str
    did: str
    at: float
    request_id: str | None = None  # click-to-dial request that created it


@dataclass(frozen=True)
class CallIdentified:
    """Our AGI (or the IVR) tied the call to a customer: the pop should name them."""

    server: str
    linkedid: str
    customer_id: int | None
    business_key: str | None
    at: float


@dataclass(frozen=True)
class CallQueued:
    server: str
    linkedid: str
    queue: str
    at: float


@dataclass(frozen=True)
class AgentRinging:
    server: str
    linkedid: str
    ring_id: str  # the agent leg's Uniqueid: one per agent rung
    interface: str
    member_name: str
    queue: str | None
    caller: str
    at: float


@dataclass(frozen=True)
class RingWithdrawn:
    server: str
    linkedid: str
    ring_id: str
    interface: str
    reason: str  # no-answer, answered-elsewhere, caller-abandoned, cancelled, call-ended
    at: float


@dataclass(frozen=True)
class CallAnswered:
    server: str
    linkedid: str
    ring_id: str | None
    interface: str
    member_name: str
    queue: str | None
    at: float


@dataclass(frozen=True)
class AgentCompleted:
    """The agent left a queue call (AMI AgentComplete): their after-call work starts here, as
    Asterisk's own wrapuptime does, even while the caller stays on for the survey."""

    server: str
    linkedid: str
    interface: str
    member_name: str
    queue: str | None
    at: float


@dataclass(frozen=True)
class RecordingStarted:
    server: str
    linkedid: str
    path: str  # as Asterisk sees it (inside its root)
    at: float


@dataclass(frozen=True)
class CallEnded:
    server: str
    linkedid: str
    outcome: Outcome
    at: float
    reason: str = ""
    # When the agent left (AgentComplete): talk time stops there, not when the caller hangs
    # up after the post-call survey.
    talk_end: float | None = None
