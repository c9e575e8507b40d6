"""Recordings, their QA reviews and scorecard criteria, and pause spans of live calls."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
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


class RecordingState(enum.StrEnum):
    PENDING = "pending"  # known, not ingested yet (waiting, or retrying after a full disk)
    COMPLETE = "complete"
    QUARANTINED = "quarantined"  # truncated or corrupt: moved aside, never complete
    PURGED = "purged"  # retention removed the files; the row stays as the record of it


class Recording(Base):
    """One MixMonitor file: where it came from, where it lives now, and what call it is."""

    __tablename__ = "recordings"
    id: Mapped[int] = mapped_column(primary_key=True)
    server: Mapped[str] = mapped_column(String(40))
    # As Asterisk wrote it (inside the PBX root): the idempotency key of an ingest.
    source_path: Mapped[str] = mapped_column(String(300), unique=True)
    linkedid: Mapped[str | None] = mapped_column(String(40), index=True)
    call_id: Mapped[int | None] = mapped_column(Integer, index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    queue: Mapped[str | None] = mapped_column(String(40))
    service_request_id: Mapped[int | None] = mapped_column(Integer, index=True)
    direction: Mapped[str | None] = mapped_column(String(10))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    talk_seconds: Mapped[float | None] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(12), default=RecordingState.PENDING.value)
    # Relative to settings.recordings_dir.
    wav_path: Mapped[str | None] = mapped_column(String(300))
    opus_path: Mapped[str | None] = mapped_column(String(300))
    sha256: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    rms: Mapped[float | None] = mapped_column(Float)
    peaks: Mapped[list[int] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(String(300))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Who is ingesting it right now (a lease, so two nodes or a restart never both do).
    claimed_by: Mapped[str | None] = mapped_column(String(40))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hold_reason: Mapped[str | None] = mapped_column(String(200))
    hold_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ingested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    __table_args__ = (Index("ix_recordings_state_ended", "state", "ended_at"),)


class QaCriterion(Base):
    """One line of the QA scorecard, configured by an admin; a weight of 0 retires it."""

    __tablename__ = "qa_criteria"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    weight: Mapped[int] = mapped_column(Integer, default=1)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QaReview(Base):
    """A submitted scorecard: immutable. An amendment is a new row (version + 1) pointing at
    the one it amends; the criteria and weights are copied in, so later edits to the
    scorecard never change an old score."""

    __tablename__ = "qa_reviews"
    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id"), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    amends_id: Mapped[int | None] = mapped_column(ForeignKey("qa_reviews.id"), unique=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    score: Mapped[float] = mapped_column(Float)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    comments: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    summary: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (UniqueConstraint("recording_id", "version", name="uq_qa_reviews_version"),)


class RecordingPause(Base):
    """A span of a live call during which recording was muted (sensitive data read out)."""

    __tablename__ = "recording_pauses"
    id: Mapped[int] = mapped_column(primary_key=True)
    server: Mapped[str] = mapped_column(String(40))
    linkedid: Mapped[str] = mapped_column(String(40), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    paused_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resumed_by: Mapped[str | None] = mapped_column(String(12))  # agent | auto | call_end
