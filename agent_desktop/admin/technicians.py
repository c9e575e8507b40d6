"""Field technicians: a user with the technician role, an office, a mobile number for the SMS
work orders, and skills (vehicle types) that dispatch matches against."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent_desktop.admin.actor import Actor
from agent_desktop.admin.changes import admin_snapshot, log_change
from agent_desktop.admin.users import _clean, find_user, insert_user
from agent_desktop.admin.validation import flag, text
from crm_core.db import Database
from crm_core.errors import DuplicateCode, ValidationError
from crm_core.models import Role, User
from crm_core.phones import normalize
from ticketing.models import StaffMobile


def _mobile(values: Mapping[str, Any], home_area: str) -> str:
    raw = text(values, "mobile", 40, required=True) or ""
    phone = normalize(raw, home_area_code=home_area)
    if phone is None or phone.kind != "mobile":
        raise ValidationError(
            f"{raw!r} is not a mobile number; work orders are sent by SMS", field="mobile"
        )
    return phone.e164


async def _set_mobile(session: AsyncSession, user: User, e164: str) -> None:
    holder = (
        await session.execute(
            select(User.username)
            .join(StaffMobile, StaffMobile.user_id == User.id)
            .where(StaffMobile.e164 == e164, User.id != user.id)
        )
    ).scalar_one_or_none()
    if holder is not None:
        raise DuplicateCode(f"mobile {e164} already belongs to {holder}", field="mobile")
    row = await session.get(StaffMobile, user.id)
    if row is None:
        session.add(StaffMobile(user_id=user.id, e164=e164))
    else:
        row.e164 = e164


async def _view(session: AsyncSession, user: User) -> dict[str, Any]:
    data = admin_snapshot(user)
    data["mobile"] = await session.scalar(
        select(StaffMobile.e164).where(StaffMobile.user_id == user.id)
    )
    return data


def _require_office(values: Mapping[str, Any]) -> None:
    if not text(values, "office", 100):
        raise ValidationError("a technician belongs to an office", field="office")


async def create_technician(
    db: Database, actor: Actor, values: Mapping[str, Any]
) -> tuple[dict[str, Any], str | None]:
    _require_office(values)
    mobile = _mobile(values, db.settings.home_area_code)
    fields = {
        k: v
        for k, v in values.items()
        if k in ("username", "display_name", "office", "region", "skills")
    }
    async with db.transaction() as session:
        user, shown = await insert_user(
            session, actor, {**fields, "role": Role.TECHNICIAN.value}, None
        )
        await _set_mobile(session, user, mobile)
        await session.flush()
        return await _view(session, user), shown


async def update_technician(
    db: Database, actor: Actor, ref: int | str, values: Mapping[str, Any]
) -> dict[str, Any]:
    allowed = {"display_name", "office", "region", "skills", "mobile", "active"}
    unknown = set(values) - allowed
    if unknown:
        raise ValidationError(f"unknown field(s): {', '.join(sorted(unknown))}", field=min(unknown))
    if "office" in values:
        _require_office(values)
    async with db.transaction() as session:
        user = await find_user(session, ref)
        if user.role != Role.TECHNICIAN.value:
            raise ValidationError(f"{user.username} is not a technician", field="username")
        before = await _view(session, user)
        clean = await _clean(
            session, {k: v for k, v in values.items() if k not in ("mobile", "active")}
        )
        for key, value in clean.items():
            setattr(user, key, value)
        if "active" in values:
            user.active = bool(flag(values, "active"))
        if "mobile" in values:
            await _set_mobile(session, user, _mobile(values, db.settings.home_area_code))
        await session.flush()
        after = await _view(session, user)
        if after != before:
            await log_change(session, actor, "user", user.id, "update", before, after)
        return after


async def list_technicians(db: Database, office: str | None = None) -> list[dict[str, Any]]:
    query = (
        select(User).where(User.role == Role.TECHNICIAN.value).order_by(User.office, User.username)
    )
    if office:
        query = query.where(User.office == office)
    async with db.transaction() as session:
        return [await _view(session, u) for u in (await session.scalars(query)).all()]
