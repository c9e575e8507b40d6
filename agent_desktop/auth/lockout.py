"""Brute-force defences: the seed's "three wrong passwords lock the account" plus a per-IP
throttle, arranged so that nobody can lock a real user out for good (docs/security.md).

- Failures of a user are counted separately for "known" sources (addresses the user logged in
  from successfully within known_ip_days) and for every other source. Three in a row in one
  scope lock that scope for lockout_minutes. An attacker on the internet therefore locks only
  the "other" scope; the agent at their usual desk still logs in.
- An address with ip_throttle_failures failed logins within ip_throttle_minutes is refused
  before any password is checked, whatever the username: it slows password spraying and
  stops one address from re-locking accounts forever.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from agent_desktop.models import LoginLock, LoginRecord
from crm_core.db import Database
from crm_core.settings import Settings

KNOWN = "known"
OTHER = "other"
# Results that count against an address: a password was actually tried and was wrong.
FAILURES = ("bad_password", "unknown_user", "disabled")


async def ip_throttled(db: Database, settings: Settings, ip: str, now: datetime) -> bool:
    since = now - timedelta(minutes=settings.ip_throttle_minutes)
    async with db.connect() as conn:
        count = await conn.scalar(
            select(func.count())
            .select_from(LoginRecord)
            .where(LoginRecord.ip == ip, LoginRecord.at >= since, LoginRecord.result.in_(FAILURES))
        )
    return (count or 0) >= settings.ip_throttle_failures


async def source_scope(
    db: Database, settings: Settings, user_id: int, ip: str, now: datetime
) -> str:
    since = now - timedelta(days=settings.known_ip_days)
    async with db.connect() as conn:
        seen = await conn.scalar(
            select(LoginRecord.id)
            .where(
                LoginRecord.user_id == user_id,
                LoginRecord.ip == ip,
                LoginRecord.result == "ok",
                LoginRecord.at >= since,
            )
            .limit(1)
        )
    return KNOWN if seen is not None else OTHER


async def locked_until(db: Database, user_id: int, scope: str, now: datetime) -> datetime | None:
    async with db.transaction() as session:
        row = await session.get(LoginLock, (user_id, scope))
    if row is None or row.locked_until is None or row.locked_until <= now:
        return None
    return row.locked_until


async def record_failure(
    db: Database, settings: Settings, user_id: int, scope: str, now: datetime
) -> datetime | None:
    """Count one wrong password; return the lock's end when this failure locked the scope."""
    for _attempt in range(2):  # a concurrent first failure may insert the row first
        try:
            async with db.transaction() as session:
                row = await session.get(LoginLock, (user_id, scope), with_for_update=True)
                if row is None:
                    row = LoginLock(user_id=user_id, scope=scope, failures=0, updated_at=now)
                    session.add(row)
                if row.locked_until is not None and row.locked_until <= now:
                    row.locked_until = None  # an expired lock starts a new run of three
                row.failures += 1
                row.updated_at = now
                if row.failures >= settings.lockout_failures:
                    row.failures = 0
                    row.locked_until = now + timedelta(minutes=settings.lockout_minutes)
                    return row.locked_until
                return None
        except IntegrityError:
            continue
    return None


async def record_success(db: Database, user_id: int, scope: str) -> None:
    async with db.transaction() as session:
        await session.execute(
            delete(LoginLock).where(LoginLock.user_id == user_id, LoginLock.scope == scope)
        )


async def unlock(db: Database, user_id: int) -> bool:
    async with db.transaction() as session:
        result = await session.execute(delete(LoginLock).where(LoginLock.user_id == user_id))
    return bool(getattr(result, "rowcount", 0))


async def active_locks(db: Database, now: datetime) -> list[LoginLock]:
    async with db.transaction() as session:
        rows = await session.scalars(
            select(LoginLock).where(LoginLock.locked_until > now).order_by(LoginLock.user_id)
        )
        return list(rows.all())
