"""User accounts: create, edit, disable (never delete), reset passwords, list.

The web pages, the JSON API and `hotline users` all call these functions: one validation, one
change record and one audit row per change, whichever door the admin came through.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent_desktop.admin.actor import Actor
from agent_desktop.admin.changes import admin_snapshot, log_change
from agent_desktop.admin.errors import AdminRefused
from agent_desktop.admin.lookup import find_by_ref
from agent_desktop.admin.validation import USERNAME, check_password, flag, networks, text
from agent_desktop.models import WebSession
from crm_core.db import Database
from crm_core.errors import DuplicateCode, ValidationError
from crm_core.models import CallQueue, Office, QueueMember, Role, User
from crm_core.users import hash_password

ROLES = tuple(r.value for r in Role)
EDITABLE = ("display_name", "role", "office", "region", "ip_allowlist", "skills", "sticky_owner")


def generated_password() -> str:
    """Shown once to the admin; the user picks their own at the first login."""
    return "Hl-" + secrets.token_urlsafe(12)


async def find_user(session: AsyncSession, ref: int | str) -> User:
    return await find_by_ref(session, User, User.username, ref, "user")


async def view(session: AsyncSession, row: User) -> dict[str, Any]:
    queues = (
        await session.execute(
            select(CallQueue.name, QueueMember.penalty)
            .join(QueueMember, QueueMember.queue_id == CallQueue.id)
            .where(QueueMember.user_id == row.id)
            .order_by(CallQueue.name)
        )
    ).all()
    data = admin_snapshot(row)
    data["queues"] = [{"queue": q, "penalty": p} for q, p in queues]
    data["extension"] = (row.phone_interface or "").partition("/")[2] or None
    return data


async def _clean(session: AsyncSession, values: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(values) - set(EDITABLE) - {"username", "password"}
    if unknown:
        raise ValidationError(f"unknown field(s): {', '.join(sorted(unknown))}", field=min(unknown))
    clean: dict[str, Any] = {}
    if "display_name" in values:
        clean["display_name"] = text(values, "display_name", 100, required=True)
    if "role" in values:
        role = text(values, "role", 20, required=True)
        if role not in ROLES:
            raise ValidationError(f"role must be one of {', '.join(ROLES)}", field="role")
        clean["role"] = role
    if "office" in values:
        office = text(values, "office", 100)
        if office is not None:
            known = await session.scalar(
                select(Office.id).where(Office.name == office, Office.active.is_(True))
            )
            if known is None:
                raise ValidationError(
                    f"no office {office!r}; create it first (hotline offices add)", field="office"
                )
        clean["office"] = office
    if "region" in values:
        clean["region"] = text(values, "region", 100)
    if "ip_allowlist" in values:
        clean["ip_allowlist"] = networks(text(values, "ip_allowlist", 500))
    if "skills" in values:
        clean["skills"] = text(values, "skills", 300)
    if "sticky_owner" in values:
        clean["sticky_owner"] = bool(flag(values, "sticky_owner"))
    return clean


async def _active_admins(session: AsyncSession) -> int:
    return int(
        await session.scalar(
            select(func.count()).where(User.role == Role.ADMIN.value, User.active.is_(True))
        )
        or 0
    )


async def end_sessions(session: AsyncSession, user_id: int) -> None:
    """Log the user out everywhere (after a disable or a password reset)."""
    await session.execute(delete(WebSession).where(WebSession.user_id == user_id))


async def insert_user(
    session: AsyncSession, actor: Actor, values: Mapping[str, Any], password: str | None
) -> tuple[User, str | None]:
    """Validate and add a user in the caller's transaction (technicians add their mobile)."""
    username = text(values, "username", 64, required=True) or ""
    if not USERNAME.match(username):
        raise ValidationError(
            "a user name is 2-64 lower-case letters, digits, '.', '_' or '-'", field="username"
        )
    shown = None
    if password is None:
        password = shown = generated_password()
    check_password(password, username)
    rest = {k: v for k, v in values.items() if k != "username"}
    clean = await _clean(session, {**rest, "display_name": values.get("display_name")})
    clean.setdefault("role", Role.AGENT.value)
    taken = await session.scalar(select(User.id).where(User.username == username))
    if taken is not None:
        raise DuplicateCode(f"user name {username} is taken (user {taken})", field="username")
    row = User(
        username=username,
        password_hash=hash_password(password),
        must_change_password=True,
        active=True,
        **clean,
    )
    session.add(row)
    await session.flush()
    await log_change(session, actor, "user", row.id, "create", None, admin_snapshot(row))
    return row, shown


async def create_user(
    db: Database, actor: Actor, values: Mapping[str, Any], password: str | None = None
) -> tuple[dict[str, Any], str | None]:
    """The new user, and the generated password when none was given (shown once)."""
    async with db.transaction() as session:
        row, shown = await insert_user(session, actor, values, password)
        return await view(session, row), shown


async def update_user(
    db: Database, actor: Actor, ref: int | str, values: Mapping[str, Any]
) -> dict[str, Any]:
    async with db.transaction() as session:
        row = await find_user(session, ref)
        clean = await _clean(session, values)
        if "password" in values or "username" in values:
            raise ValidationError(
                "user names cannot change; passwords change through reset-password",
                field="username" if "username" in values else "password",
            )
        demoted = clean.get("role", row.role) != Role.ADMIN.value == row.role
        if demoted and row.active and await _active_admins(session) <= 1:
            raise AdminRefused("this is the last active admin; make another admin first")
        before = admin_snapshot(row)
        for key, value in clean.items():
            setattr(row, key, value)
        await session.flush()
        after = admin_snapshot(row)
        if after != before:
            await log_change(session, actor, "user", row.id, "update", before, after)
        return await view(session, row)


async def set_active(db: Database, actor: Actor, ref: int | str, active: bool) -> dict[str, Any]:
    """Disable (or enable again); a disabled user is logged out and rings no more."""
    async with db.transaction() as session:
        row = await find_user(session, ref)
        if row.active == active:
            return await view(session, row)
        if not active:
            if actor.user_id == row.id:
                raise AdminRefused("you cannot disable your own account")
            if row.role == Role.ADMIN.value and await _active_admins(session) <= 1:
                raise AdminRefused("this is the last active admin; make another admin first")
        before = admin_snapshot(row)
        row.active = active
        if not active:
            await end_sessions(session, row.id)
        await session.flush()
        action = "enable" if active else "disable"
        await log_change(session, actor, "user", row.id, action, before, admin_snapshot(row))
        return await view(session, row)


async def reset_password(
    db: Database, actor: Actor, ref: int | str, password: str | None = None
) -> tuple[dict[str, Any], str | None]:
    """A new password the user must change at the next login; sessions end."""
    async with db.transaction() as session:
        row = await find_user(session, ref)
        shown = None
        if password is None:
            password = shown = generated_password()
        check_password(password, row.username)
        before = admin_snapshot(row)
        row.password_hash = hash_password(password)
        row.must_change_password = True
        await end_sessions(session, row.id)
        await session.flush()
        after = admin_snapshot(row)
        await log_change(
            session, actor, "user", row.id, "password_reset", before, after, "password reset"
        )
        return await view(session, row), shown


async def list_users(
    db: Database, *, role: str | None = None, search: str | None = None, disabled: bool = True
) -> list[dict[str, Any]]:
    query = select(User).order_by(User.username)
    if role:
        query = query.where(User.role == role)
    if not disabled:
        query = query.where(User.active.is_(True))
    if search:
        like = f"%{search.strip()[:64]}%"
        query = query.where(or_(User.username.like(like), User.display_name.like(like)))
    async with db.transaction() as session:
        rows = (await session.scalars(query.limit(2000))).all()
        return [await view(session, row) for row in rows]


async def get_user(db: Database, ref: int | str) -> dict[str, Any]:
    async with db.transaction() as session:
        return await view(session, await find_user(session, ref))
