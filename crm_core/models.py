"""CRM core tables: customers, contacts, phone numbers, vehicles, users, activities, history.

Field names follow the seed's customer-data section (§3.1). Times are stored in UTC.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def search_key(length: int) -> String:
    """A string column searched by prefix range: byte order on PostgreSQL, whatever the
    database's collation, so `col >= 'ab' AND col < 'ac'` means "starts with ab"."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both backends (SQLite hands back naive values otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; store aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Role(enum.StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    TECHNICIAN = "technician"
    ADMIN = "admin"
    # Dispatches an office's work orders without supervising its agents.
    DISPATCHER = "dispatcher"
    # Reads the reports and the wallboard (all regions); changes nothing.
    AUDITOR = "auditor"


ROLE_CHECK = "role in ('agent','supervisor','technician','admin','dispatcher','auditor')"


class CustomerKind(enum.StrEnum):
    DIRECT = "direct"
    DEALER = "dealer"


class ActivityKind(enum.StrEnum):
    CALL = "call"
    VISIT = "visit"
    NOTE = "note"


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20), default=Role.AGENT.value)
    phone_interface: Mapped[str | None] = mapped_column(String(80))
    office: Mapped[str | None] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(100))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set by an admin's password reset (and for new accounts): the next login must pick one.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    # HA1 digest (md5 of "endpoint:realm:secret") of a registering phone: the secret itself is
    # shown once and never stored. None: a test-mode phone at a fixed loopback address.
    sip_digest: Mapped[str | None] = mapped_column(String(64))
    # Direct calls of the customers this agent owns ring this agent first.
    sticky_owner: Mapped[bool] = mapped_column(Boolean, default=True)
    # Technicians: vehicle types / skills, comma-separated, for dispatch.
    skills: Mapped[str | None] = mapped_column(String(300))
    # Comma-separated networks this user may log in from, on top of the global and role lists.
    ip_allowlist: Mapped[str | None] = mapped_column(String(500))
    __table_args__ = (CheckConstraint(ROLE_CHECK, name="role"),)


class Office(Base):
    """A regional service office (服务站): requests are dispatched to it by name."""

    __tablename__ = "offices"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    region: Mapped[str | None] = mapped_column(String(100))
    dispatcher_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    working_hours: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class CallQueue(Base):
    """An Asterisk queue as the admin sees it; rendered into queues.conf.

    Timing columns left empty take the PBX mode's default (short ones in test mode)."""

    __tablename__ = "call_queues"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    strategy: Mapped[str] = mapped_column(String(20), default="ringall")
    ring_seconds: Mapped[int | None] = mapped_column(Integer)
    wrapup_seconds: Mapped[int | None] = mapped_column(Integer)
    max_wait_seconds: Mapped[int | None] = mapped_column(Integer)
    weight: Mapped[int] = mapped_column(Integer, default=0)
    announce_position: Mapped[bool] = mapped_column(Boolean, default=False)
    announce_frequency: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # 0004: opening hours (crm_core/business_hours.py; empty = always open), the holiday
    # calendar ("cn": Chinese public holidays and adjusted working days, "none"), overflow,
    # queue callback and the service-level thresholds the KPIs use.
    hours: Mapped[str | None] = mapped_column(String(300))
    holiday_calendar: Mapped[str] = mapped_column(String(10), default="cn", server_default="cn")
    overflow_seconds: Mapped[int | None] = mapped_column(Integer)
    overflow_max_waiting: Mapped[int | None] = mapped_column(Integer)
    # "queue:<name>", "voicemail" or "callback"; empty: voicemail when nobody can answer.
    overflow_target: Mapped[str | None] = mapped_column(String(60))
    callback_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    announce_holdtime: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    service_level_seconds: Mapped[int] = mapped_column(Integer, default=20, server_default="20")
    short_abandon_seconds: Mapped[int] = mapped_column(Integer, default=5, server_default="5")


class QueueClosure(Base):
    """An ad-hoc closure an admin adds (a typhoon day, a company event): callers get the
    closed-hours routing between starts_at and ends_at. No queue: every queue."""

    __tablename__ = "queue_closures"
    id: Mapped[int] = mapped_column(primary_key=True)
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("call_queues.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    reason: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (CheckConstraint("ends_at > starts_at", name="period"),)


class DispositionCode(Base):
    """A wrap-up code the agent picks after a call (咨询, 报修, 投诉, 回访, 其他 ...)."""

    __tablename__ = "disposition_codes"
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    label: Mapped[str] = mapped_column(String(100))
    sort: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class QueueMember(Base):
    __tablename__ = "queue_members"
    queue_id: Mapped[int] = mapped_column(ForeignKey("call_queues.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    penalty: Mapped[int] = mapped_column(Integer, default=0)
    __table_args__ = (CheckConstraint("penalty between 0 and 99", name="penalty"),)


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(search_key(32), unique=True)
    name: Mapped[str] = mapped_column(search_key(200), index=True)
    name_pinyin: Mapped[str] = mapped_column(search_key(400), index=True, default="")
    name_initials: Mapped[str] = mapped_column(search_key(200), index=True, default="")
    kind: Mapped[str] = mapped_column(String(10), default=CustomerKind.DIRECT.value)
    industry: Mapped[str | None] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(100))
    province: Mapped[str | None] = mapped_column(String(50))
    city: Mapped[str | None] = mapped_column(String(50))
    address: Mapped[str | None] = mapped_column(String(300))
    postcode: Mapped[str | None] = mapped_column(String(10))
    fax: Mapped[str | None] = mapped_column(String(40))
    website: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200))
    classification: Mapped[str | None] = mapped_column(String(50))
    vip_level: Mapped[int] = mapped_column(Integer, default=0)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    # A merged-away customer stays as a tombstone pointing at the survivor, so the merge
    # can be undone and old links (recordings, history) still resolve. Deliberately not
    # indexed: without statistics SQLite would drive the caller lookup from "all customers
    # not merged" (a million rows) instead of from the phone-number index (0002).
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    __table_args__ = (
        CheckConstraint("kind in ('direct','dealer')", name="kind"),
        CheckConstraint("vip_level between 0 and 9", name="vip_level"),
    )


class Contact(Base):
    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(search_key(100), index=True)
    name_pinyin: Mapped[str] = mapped_column(search_key(200), index=True, default="")
    name_initials: Mapped[str] = mapped_column(search_key(50), index=True, default="")
    department: Mapped[str | None] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(String(100))
    birthday: Mapped[date | None] = mapped_column(Date)
    interests: Mapped[str | None] = mapped_column(String(300))
    superior_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    decision_role: Mapped[str | None] = mapped_column(String(50))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PhoneNumber(Base):
    """One number of a customer or of a contact, in canonical form plus a reversed-digits key."""

    __tablename__ = "phone_numbers"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    label: Mapped[str] = mapped_column(String(20), default="phone")
    raw: Mapped[str] = mapped_column(String(60))
    e164: Mapped[str] = mapped_column(String(40), index=True)
    # Reversed national digits: "last N digits" becomes an index-friendly prefix range.
    digits_rev: Mapped[str] = mapped_column(search_key(30), index=True)
    kind: Mapped[str] = mapped_column(String(10))


class Vehicle(Base):
    __tablename__ = "vehicles"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    vin: Mapped[str] = mapped_column(String(17), unique=True)
    vin_tail: Mapped[str] = mapped_column(String(6), index=True)
    plate: Mapped[str | None] = mapped_column(search_key(20), index=True)
    model: Mapped[str | None] = mapped_column(String(100))
    chassis: Mapped[str | None] = mapped_column(String(100))
    purchase_date: Mapped[date | None] = mapped_column(Date)
    dealer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    warranty_end: Mapped[date | None] = mapped_column(Date)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class Activity(Base):
    __tablename__ = "activities"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (CheckConstraint("kind in ('call','visit','note')", name="kind"),)


class ChangeRecord(Base):
    """Before/after snapshot of one create, update, delete, restore or merge."""

    __tablename__ = "change_history"
    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str | None] = mapped_column(String(300))
    __table_args__ = (Index("ix_change_history_entity", "entity", "entity_id", "id"),)


class AuditEntry(Base):
    """Sensitive reads and security events (recording playback, number reveal, refusals)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(String(50))
    object_type: Mapped[str | None] = mapped_column(String(30))
    object_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(45))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


# --- Several nodes on one PostgreSQL (crm_core/cluster/, docs/deploy.md) ----------------
# Read and written with raw asyncpg by the cluster's own sessions; declared here so the
# schema and the migrations stay one.


class ClusterLease(Base):
    """A lease ("ami:<server>"): its holder, and the epoch every takeover raises (fencing)."""

    __tablename__ = "cluster_leases"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    epoch: Mapped[int] = mapped_column(BigInteger, server_default="0")
    holder: Mapped[str | None] = mapped_column(String(100))
    acquired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ClusterNode(Base):
    """A node's heartbeat: where it is, what it holds, whose desktops it serves."""

    __tablename__ = "cluster_nodes"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    url: Mapped[str] = mapped_column(String(200), server_default="")
    pid: Mapped[int] = mapped_column(Integer, server_default="0")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    leases: Mapped[str] = mapped_column(String(500), server_default="")
    users: Mapped[str] = mapped_column(Text, server_default="[]")


class ClusterMessage(Base):
    """A fan-out message too large for a NOTIFY payload; only its id is notified."""

    __tablename__ = "cluster_messages"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
