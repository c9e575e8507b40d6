"""Ticketing tables: service requests, work orders, follow-ups, transitions, SLA breaches.

The originating call is a plain `call_linkedid` (the call log belongs to the CTI package, so
no foreign key). Times are aware UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models import Base, UTCDateTime, search_key, utcnow


class ServiceRequest(Base):
    """服务请求."""

    __tablename__ = "service_requests"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(search_key(20), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    vehicle_id: Mapped[int | None] = mapped_column(ForeignKey("vehicles.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    channel: Mapped[str] = mapped_column(String(10))
    category: Mapped[str] = mapped_column(String(20))
    priority: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(30), index=True)
    description: Mapped[str] = mapped_column(Text)
    region: Mapped[str | None] = mapped_column(String(100), index=True)
    office: Mapped[str | None] = mapped_column(String(100), index=True)
    call_linkedid: Mapped[str | None] = mapped_column(String(64), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    response_due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    resolution_due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    __table_args__ = (
        CheckConstraint("channel in ('phone','sms','web')", name="channel"),
        CheckConstraint(
            "category in ('repair','complaint','consultation','parts')", name="category"
        ),
        CheckConstraint("priority in ('urgent','high','normal','low')", name="priority"),
    )


class WorkOrder(Base):
    """服务派工单. A reassignment closes this order and opens a new one pointing back here."""

    __tablename__ = "work_orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id"), index=True)
    # None while the order is offered to several technicians (WorkOrderOffer).
    technician_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    assigned_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"))
    state: Mapped[str] = mapped_column(String(30), index=True)
    instructions: Mapped[str | None] = mapped_column(Text)
    eta_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accept_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    arrived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    parts_needed: Mapped[str | None] = mapped_column(Text)
    parts_used: Mapped[str | None] = mapped_column(Text)
    resolution: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FollowUp(Base):
    """回访 task for a service representative."""

    __tablename__ = "follow_ups"
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id"), index=True)
    assignee_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    score: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    score_source: Mapped[str | None] = mapped_column(String(10))
    call_linkedid: Mapped[str | None] = mapped_column(String(64), index=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (
        CheckConstraint("score is null or score between 1 and 5", name="score"),
        CheckConstraint("score_source is null or score_source in ('rep','ivr')", name="source"),
    )


class Transition(Base):
    """One state change of a request, work order or follow-up: who, when, from, to, why."""

    __tablename__ = "ticket_transitions"
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id"))
    entity: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(30))
    from_state: Mapped[str | None] = mapped_column(String(30))
    to_state: Mapped[str] = mapped_column(String(30))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (
        Index("ix_ticket_transitions_request", "request_id", "id"),
        Index("ix_ticket_transitions_entity", "entity", "entity_id", "id"),
    )


class StaffMobile(Base):
    """A staff member's mobile number for SMS (technicians, office supervisors)."""

    __tablename__ = "staff_mobiles"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    e164: Mapped[str] = mapped_column(String(40), unique=True)


class SlaBreach(Base):
    """An overdue item, found once: the unique key makes the SLA check safe to run anywhere."""

    __tablename__ = "sla_breaches"
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    entity: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    escalated_to_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    __table_args__ = (UniqueConstraint("entity", "entity_id", "kind"),)


class RotationPointer(Base):
    """Round-robin position per pool (e.g. the follow-up representatives)."""

    __tablename__ = "ticket_rotation"
    pool: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_user_id: Mapped[int] = mapped_column(Integer)


class WorkOrderOffer(Base):
    """抢单: an order offered to one of several technicians; the first to accept takes it."""

    __tablename__ = "work_order_offers"
    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    technician_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # open -> taken (this technician won) | lost (another won) | declined
    state: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    __table_args__ = (
        UniqueConstraint("work_order_id", "technician_id"),
        CheckConstraint("state in ('open','taken','lost','declined')", name="state"),
    )


class FieldAction(Base):
    """One action sent from the technician's mobile page, stored once per client-made id:
    a page that resends after a network failure is answered from here, never applied twice."""

    __tablename__ = "field_actions"
    id: Mapped[int] = mapped_column(primary_key=True)
    action_id: Mapped[str] = mapped_column(String(64), unique=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    technician_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(20))
    text: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The order's state right after the action.
    outcome: Mapped[str | None] = mapped_column(String(30))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WorkOrderFile(Base):
    """A photo or the customer's signature of a work order, stored under field_files_dir
    (path relative to it) with its checksum, like a recording."""

    __tablename__ = "work_order_files"
    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    technician_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(30))
    action_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (CheckConstraint("kind in ('photo','signature')", name="kind"),)
