"""One login attempt, start to finish: IP lock, throttle, account lock, password, session.

Every attempt leaves one login-history row whatever its outcome.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import select

import agent_desktop.auth.lockout as lockout
from agent_desktop.common import sessions
from agent_desktop.common.audit import audit
from agent_desktop.common.errors import AccountLocked, BadCredentials, IpNotAllowed, TooManyAttempts
from agent_desktop.common.ipaccess import ip_allowed
from agent_desktop.common.sessions import ActiveSession, SessionUser
from agent_desktop.models import LoginRecord
from crm_core.db import Database
from crm_core.models import User, utcnow
from crm_core.users import hash_password, verify_password


@dataclass(frozen=True)
class LoginSuccess:
    token: str
    session: ActiveSession


@dataclass(frozen=True)
class Attempt:
    username: str
    ip: str
    user_agent: str | None


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Unknown users still cost one argon2 verify, so response time does not reveal them.
    return hash_password("no-such-user-dummy-password")


async def _record(
    db: Database, attempt: Attempt, result: str, user_id: int | None, now: datetime
) -> int:
    async with db.transaction() as session:
        row = LoginRecord(
            at=now,
            user_id=user_id,
            username=attempt.username[:64],
            ip=attempt.ip[:45],
            user_agent=(attempt.user_agent or "")[:200] or None,
            result=result,
        )
        session.add(row)
        await session.flush()
        return row.id


def _locked(until: datetime, now: datetime) -> AccountLocked:
    minutes = max(1, math.ceil((until - now).total_seconds() / 60))
    return AccountLocked(
        f"the account is locked after repeated wrong passwords; try again in {minutes} min",
        minutes=minutes,
        locked_until=until.isoformat(),
    )


async def _find_user(db: Database, username: str) -> User | None:
    async with db.transaction() as session:
        return (await session.scalars(select(User).where(User.username == username))).first()


async def attempt_login(db: Database, attempt: Attempt, password: str) -> LoginSuccess:
    settings, now = db.settings, utcnow()
    if not ip_allowed(settings, attempt.ip, None):
        await _record(db, attempt, "ip_refused", None, now)
        raise IpNotAllowed(f"logins from {attempt.ip} are not allowed (IP lock)")
    if await lockout.ip_throttled(db, settings, attempt.ip, now):
        await _record(db, attempt, "throttled", None, now)
        raise TooManyAttempts(
            f"too many failed logins from {attempt.ip}; wait {settings.ip_throttle_minutes} min",
            minutes=settings.ip_throttle_minutes,
        )
    user = await _find_user(db, attempt.username)
    if user is None or not user.active or not user.password_hash:
        await asyncio.to_thread(verify_password, _dummy_hash(), password)
        result = "unknown_user" if user is None else "disabled"
        await _record(db, attempt, result, user.id if user else None, now)
        raise BadCredentials("wrong username or password")
    scope = await lockout.source_scope(db, settings, user.id, attempt.ip, now)
    until = await lockout.locked_until(db, user.id, scope, now)
    if until is not None:
        await _record(db, attempt, "locked", user.id, now)
        raise _locked(until, now)
    if not await asyncio.to_thread(verify_password, user.password_hash, password):
        return await _wrong_password(db, attempt, user, scope, now)
    if not ip_allowed(settings, attempt.ip, user.role, user.ip_allowlist):
        await _record(db, attempt, "ip_refused", user.id, now)
        raise IpNotAllowed(f"{user.role} logins from {attempt.ip} are not allowed (IP lock)")
    await lockout.record_success(db, user.id, scope)
    login_id = await _record(db, attempt, "ok", user.id, now)
    token, active = await sessions.create(
        db, user, attempt.ip, login_id, settings.session_idle_minutes, settings.session_max_hours
    )
    return LoginSuccess(token, active)


async def _wrong_password(
    db: Database, attempt: Attempt, user: User, scope: str, now: datetime
) -> LoginSuccess:
    until = await lockout.record_failure(db, db.settings, user.id, scope, now)
    await _record(db, attempt, "bad_password", user.id, now)
    if until is None:
        raise BadCredentials("wrong username or password")
    await audit(
        db,
        SessionUser.of(user),
        "account_locked",
        "user",
        str(user.id),
        attempt.ip,
        {"scope": scope, "until": until.isoformat()},
    )
    raise _locked(until, now)
