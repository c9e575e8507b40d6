"""Server-side browser sessions: a random token in an HttpOnly cookie, its SHA-256 in the
database, an idle timeout and an absolute lifetime."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agent_desktop.common.ipaccess import is_tls
from agent_desktop.models import LoginRecord, WebSession
from crm_core.db import Database
from crm_core.models import User, utcnow

COOKIE = "hotline_session"
# Writing last_seen on every request would turn every page view into a write; a minute of
# slack on a two-hour idle timeout is harmless.
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class SessionUser:
    id: int
    username: str
    display_name: str
    role: str
    region: str | None
    office: str | None
    phone_interface: str | None
    # An admin reset the password: every page but the password change is closed until done.
    must_change_password: bool = False
    ip_allowlist: str | None = None
    # Set when the request came with an API token (docs/api.md). A service token has no user:
    # its principal's id is the token's id negated, so it owns no customer and writes no
    # user id anywhere (audit.py stores None and the token id).
    token_id: int | None = None

    @property
    def is_service(self) -> bool:
        return self.id < 0

    @classmethod
    def of(cls, user: User) -> SessionUser:
        return cls(
            user.id,
            user.username,
            user.display_name,
            user.role,
            user.region,
            user.office,
            user.phone_interface,
            bool(user.must_change_password),
            user.ip_allowlist,
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role,
            "region": self.region,
            "office": self.office,
            "phone_interface": self.phone_interface,
            "must_change_password": self.must_change_password,
        }


@dataclass(frozen=True)
class ActiveSession:
    id: int
    user: SessionUser
    csrf_token: str
    login_id: int | None


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create(
    db: Database, user: User, ip: str, login_id: int | None, idle_minutes: int, max_hours: int
) -> tuple[str, ActiveSession]:
    """A fresh session (never a reused one: no session fixation); returns the cookie token."""
    token, csrf = new_token(), new_token()
    now = utcnow()
    async with db.transaction() as session:
        row = WebSession(
            token_hash=token_hash(token),
            user_id=user.id,
            csrf_token=csrf,
            login_id=login_id,
            ip=ip[:45],
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=max_hours),
        )
        session.add(row)
        await session.flush()
        session_id = row.id
    return token, ActiveSession(session_id, SessionUser.of(user), csrf, login_id)


def _expired(row: WebSession, now: datetime, idle_minutes: int) -> bool:
    return now >= row.expires_at or now - row.last_seen_at >= timedelta(minutes=idle_minutes)


async def resolve(db: Database, token: str, idle_minutes: int) -> ActiveSession | None:
    """The live session behind a cookie token, or None. An expired session is ended here,
    so its login-history row gets its logout time."""
    if not token or len(token) > 100:
        return None
    now = utcnow()
    async with db.transaction() as session:
        found = (
            await session.execute(
                select(WebSession, User)
                .join(User, User.id == WebSession.user_id)
                .where(WebSession.token_hash == token_hash(token))
            )
        ).first()
        if found is None:
            return None
        row, user = found
        if _expired(row, now, idle_minutes) or not user.active:
            await _end(session, row, "expired" if user.active else "disabled", now)
            return None
        if now - row.last_seen_at >= TOUCH_EVERY:
            row.last_seen_at = now
        return ActiveSession(row.id, SessionUser.of(user), row.csrf_token, row.login_id)


async def _end(session: AsyncSession, row: WebSession, reason: str, now: datetime) -> None:
    if row.login_id is not None:
        await session.execute(
            update(LoginRecord)
            .where(LoginRecord.id == row.login_id, LoginRecord.logout_at.is_(None))
            .values(logout_at=now, logout_reason=reason)
        )
    await session.delete(row)


async def end(db: Database, session_id: int, reason: str = "logout") -> None:
    async with db.transaction() as session:
        row = await session.get(WebSession, session_id)
        if row is not None:
            await _end(session, row, reason, utcnow())


async def end_all_for_user(db: Database, user_id: int, reason: str) -> int:
    """Log a user out everywhere (account disabled, password changed, admin action)."""
    async with db.transaction() as session:
        query = select(WebSession).where(WebSession.user_id == user_id)
        rows = (await session.scalars(query)).all()
        now = utcnow()
        for row in rows:
            await _end(session, row, reason, now)
    return len(rows)


def set_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    # No max_age: a browser session cookie; the server enforces the real lifetime.
    response.set_cookie(
        COOKIE,
        token,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=is_tls(request),
    )


def clear_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/")
