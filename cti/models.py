"""The call log and screen-pop receipts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
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
    __table_args__ = (
        UniqueConstraint("server", "linkedid", name="uq_calls_server_linkedid"),
        CheckConstraint(
            "survey_score is null or survey_score between 1 and 5", name="survey_score"
        ),
        Index("ix_calls_agent_processed", "agent_id", "processed_at"),
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
