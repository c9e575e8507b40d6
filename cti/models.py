"""The call log and screen-pop receipts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models import Base, UTCDateTime, utcnow


class Call(Base):
    """One inbound or outbound call, from the PBX's first event to its hangup."""

    __tablename__ = "calls"
    id: Mapped[int] = mapped_column(primary_key=True)
    server: Mapped[str] = mapped_column(String(40))
    linkedid: Mapped[str] = mapped_column(String(40))
    request_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    direction: Mapped[str] = mapped_column(String(10))
    number: Mapped[str] = mapped_column(String(60), default="")  # the customer's side
    number_e164: Mapped[str | None] = mapped_column(String(40), index=True)
    did: Mapped[str | None] = mapped_column(String(40))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    agent_interface: Mapped[str | None] = mapped_column(String(80))
    queue: Mapped[str | None] = mapped_column(String(40))
    recording_path: Mapped[str | None] = mapped_column(String(300))
    service_request_id: Mapped[int | None] = mapped_column()
    business_key: Mapped[str | None] = mapped_column(String(60))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # cti_0002
    ringing_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # In the queue (from queue entry; the greeting and IVR before it are not waiting).
    wait_seconds: Mapped[float | None] = mapped_column(Float)
    talk_seconds: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(12), default="in_progress")
    outcome: Mapped[str | None] = mapped_column(String(12), index=True)
    disposition: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    callback_done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The caller's IVR satisfaction score, 1 (very dissatisfied) to 5 (cti_0003).
    survey_score: Mapped[int | None] = mapped_column(Integer)
    surveyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # cti_0004: after-call work and routing. wrapup_until is when the agent's wrap-up ends
    # (extendable once); routed is "closed" (outside opening hours), "overflow" (left the
    # queue for its overflow target), "callback" (hung up keeping their place) or empty.
    hold_seconds: Mapped[float | None] = mapped_column(Float)
    wrapup_seconds: Mapped[float | None] = mapped_column(Float)
    wrapup_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    wrapup_extended: Mapped[bool | None] = mapped_column(Boolean)
    routed: Mapped[str | None] = mapped_column(String(20))
    overflowed_from: Mapped[str | None] = mapped_column(String(40))
    voicemail_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    __table_args__ = (
        UniqueConstraint("server", "linkedid", name="uq_calls_server_linkedid"),
        CheckConstraint(
            "survey_score is null or survey_score between 1 and 5", name="survey_score"
        ),
        Index("ix_calls_agent_processed", "agent_id", "processed_at"),
        Index("ix_calls_ended_at", "ended_at"),
    )


class ScreenPop(Base):
    """A pop sent to one agent for one ring, with the browser's delivery/display receipts."""

    __tablename__ = "screen_pops"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    server: Mapped[str] = mapped_column(String(40))
    linkedid: Mapped[str] = mapped_column(String(40), index=True)
    ring_id: Mapped[str] = mapped_column(String(40))
    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    state: Mapped[str] = mapped_column(String(12))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    displayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class QueueCallback(Base):
    """A caller who pressed 1 to hang up keeping their place (or left a voicemail): one job
    of the callback worker. The state machine is cti/callback_states.py; claim_token and
    attempt_id make an attempt happen once, even across a crash (the SMS outbox discipline)."""

    __tablename__ = "queue_callbacks"
    id: Mapped[int] = mapped_column(primary_key=True)
    server: Mapped[str] = mapped_column(String(40))
    linkedid: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(12))  # "queue" (pressed 1) or "voicemail"
    queue: Mapped[str] = mapped_column(String(40))
    number: Mapped[str] = mapped_column(String(60))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    place_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when the caller joined the queue
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    state: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_token: Mapped[str | None] = mapped_column(String(40))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    attempt_id: Mapped[str | None] = mapped_column(String(60), unique=True)
    attempt_linkedid: Mapped[str | None] = mapped_column(String(40))
    last_result: Mapped[str | None] = mapped_column(String(60))
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    __table_args__ = (
        UniqueConstraint("server", "linkedid", name="uq_queue_callbacks_server_linkedid"),
        Index("ix_queue_callbacks_state", "state", "place_at"),
    )


class SpySession(Base):
    """A supervisor listening to, whispering to or barging into an agent's call (audited)."""

    __tablename__ = "spy_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    supervisor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    server: Mapped[str] = mapped_column(String(40))
    linkedid: Mapped[str] = mapped_column(String(40))
    mode: Mapped[str] = mapped_column(String(10))
    action_id: Mapped[str] = mapped_column(String(60), unique=True)
    channel: Mapped[str | None] = mapped_column(String(120))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    __table_args__ = (CheckConstraint("mode in ('listen','whisper','barge')", name="mode"),)
