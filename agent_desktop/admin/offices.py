"""Regional service offices (服务站): where requests are dispatched and technicians work."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent_desktop.admin.actor import Actor
from agent_desktop.admin.changes import admin_snapshot, log_change
from agent_desktop.admin.lookup import find_by_ref
from agent_desktop.admin.validation import flag, text
from crm_core.db import Database
from crm_core.errors import DuplicateCode, ValidationError
from crm_core.models import Office, Role, User
from crm_core.phones import normalize

# "08:30-17:30", optionally several ranges: "08:00-12:00,13:30-17:30".
HOURS = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$")
DISPATCH_ROLES = (Role.SUPERVISOR.value, Role.DISPATCHER.value, Role.ADMIN.value)


def _hours(value: str | None) -> str | None:
    if value is None:
        return None
    ranges = [r.strip() for r in value.replace("，", ",").split(",") if r.strip()]
    for item in ranges:
        if not HOURS.match(item) or item[:5] >= item[6:]:
            raise ValidationError(
                f"working hours {item!r}: write them like 08:30-17:30 (several: 08:00-12:00,"
                "13:30-17:30)",
                field="working_hours",
            )
    return ",".join(ranges) or None


async def find_office(session: AsyncSession, ref: int | str) -> Office:
    return await find_by_ref(session, Office, Office.name, ref, "office")


async def _clean(
    session: AsyncSession, values: Mapping[str, Any], home_area: str
) -> dict[str, Any]:
    allowed = {"name", "region", "dispatcher", "working_hours", "phone", "active"}
    unknown = set(values) - allowed
    if unknown:
        raise ValidationError(f"unknown field(s): {', '.join(sorted(unknown))}", field=min(unknown))
    clean: dict[str, Any] = {}
    if "name" in values:
        clean["name"] = text(values, "name", 100, required=True)
    if "region" in values:
        clean["region"] = text(values, "region", 100)
    if "working_hours" in values:
        clean["working_hours"] = _hours(text(values, "working_hours", 100))
    if "phone" in values:
        raw = text(values, "phone", 40)
        if raw is not None:
            phone = normalize(raw, home_area_code=home_area)
            if phone is None:
                raise ValidationError(f"{raw!r} is not a phone number", field="phone")
            raw = phone.e164
        clean["phone"] = raw
    if "dispatcher" in values:
        who = text(values, "dispatcher", 64)
        clean["dispatcher_id"] = None
        if who is not None:
            user = (await session.scalars(select(User).where(User.username == who))).first()
            if user is None or not user.active or user.role not in DISPATCH_ROLES:
                raise ValidationError(
                    f"{who!r} is not an active supervisor, dispatcher or admin",
                    field="dispatcher",
                )
            clean["dispatcher_id"] = user.id
    if "active" in values:
        clean["active"] = bool(flag(values, "active"))
    return clean


async def _view(session: AsyncSession, row: Office) -> dict[str, Any]:
    data = admin_snapshot(row)
    dispatcher = await session.get(User, row.dispatcher_id) if row.dispatcher_id else None
    data["dispatcher"] = dispatcher.username if dispatcher else None
    data["technicians"] = list(
        (
            await session.scalars(
                select(User.username).where(
                    User.office == row.name,
                    User.role == Role.TECHNICIAN.value,
                    User.active.is_(True),
                )
            )
        ).all()
    )
    return data


async def create_office(db: Database, actor: Actor, values: Mapping[str, Any]) -> dict[str, Any]:
    async with db.transaction() as session:
        clean = await _clean(session, {**values, "name": values.get("name")}, _area(db))
        if await session.scalar(select(Office.id).where(Office.name == clean["name"])):
            raise DuplicateCode(f"there is already an office {clean['name']}", field="name")
        row = Office(active=True, **clean)
        session.add(row)
        await session.flush()
        await log_change(session, actor, "office", row.id, "create", None, admin_snapshot(row))
        return await _view(session, row)


async def update_office(
    db: Database, actor: Actor, ref: int | str, values: Mapping[str, Any]
) -> dict[str, Any]:
    async with db.transaction() as session:
        row = await find_office(session, ref)
        clean = await _clean(session, values, _area(db))
        if "name" in clean and clean["name"] != row.name:
            # Users and requests name their office; a rename would orphan them.
            raise ValidationError(
                "an office keeps its name (users and requests refer to it); "
                "create a new office and move its staff instead",
                field="name",
            )
        before = admin_snapshot(row)
        for key, value in clean.items():
            setattr(row, key, value)
        await session.flush()
        after = admin_snapshot(row)
        if after != before:
            await log_change(session, actor, "office", row.id, "update", before, after)
        return await _view(session, row)


async def list_offices(db: Database, *, inactive: bool = True) -> list[dict[str, Any]]:
    query = select(Office).order_by(Office.region, Office.name)
    if not inactive:
        query = query.where(Office.active.is_(True))
    async with db.transaction() as session:
        return [await _view(session, r) for r in (await session.scalars(query)).all()]


async def office_names(db: Database) -> list[str]:
    async with db.transaction() as session:
        rows = await session.scalars(
            select(Office.name).where(Office.active.is_(True)).order_by(Office.name)
        )
        return list(rows.all())


def _area(db: Database) -> str:
    return db.settings.home_area_code
