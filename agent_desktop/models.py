"""Tables of the web edge: browser sessions, API tokens, login history and password-failure
locks.

Users and the audit log live in crm_core; these tables only say who is logged in, how each
login attempt went and which accounts are locked.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models import Base, UTCDateTime, utcnow


class LoginRecord(Base):
    """One login attempt (the seed's 登录历史): who, when, from where, how it went, logout."""

    __tablename__ = "login_history"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # What was typed, kept even when no such user exists (spraying shows up in the history).
    username: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(200))
    result: Mapped[str] = mapped_column(String(20))
    logout_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    logout_reason: Mapped[str | None] = mapped_column(String(20))
    __table_args__ = (
        Index("ix_login_history_user_at", "user_id", "at"),
        Index("ix_login_history_ip_at", "ip", "at"),
        Index("ix_login_history_at", "at"),
    )


class WebSession(Base):
    """A logged-in browser. Only a hash of the token is stored: a database leak gives no
    usable cookies."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    login_id: Mapped[int | None] = mapped_column(ForeignKey("login_history.id"))
    ip: Mapped[str] = mapped_column(String(45))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LoginLock(Base):
    """Consecutive password failures of one user from one kind of source.

    scope is "known" (addresses the user logged in from recently) or "other"; a lock earned
    from unknown addresses does not block the user's own desk (docs/security.md).
    """

    __tablename__ = "login_locks"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    scope: Mapped[str] = mapped_column(String(10), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    """A bearer token for programs (docs/api.md). Only the SHA-256 of the token is stored.

    kind "personal": acts as user_id, with that user's role and scope. kind "service": acts
    as nobody, with its own role and optional region/office scope; read-only."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the token, to tell tokens apart in lists; never enough to use.
    prefix: Mapped[str] = mapped_column(String(12))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str | None] = mapped_column(String(20))
    region: Mapped[str | None] = mapped_column(String(100))
    office: Mapped[str | None] = mapped_column(String(100))
    rate_per_minute: Mapped[int] = mapped_column(Integer, default=60)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    __table_args__ = (CheckConstraint("kind IN ('personal', 'service')", name="kind"),)
