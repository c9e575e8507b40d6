"""Disposition codes (处理结果) as records: the list agents pick from after a call.

A code is never deleted or renamed: calls store it, so a code that is no longer wanted is
disabled, and old calls keep showing its label.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent_desktop.admin.actor import Actor
from agent_desktop.admin.changes import admin_snapshot, log_change
from agent_desktop.admin.validation import flag, integer, text
from crm_core.db import Database
from crm_core.errors import DuplicateCode, NotFound, ValidationError
from crm_core.models import DispositionCode

CODE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
FIELDS = ("code", "label", "sort", "active")
# Codes have no number, and the change history keys entities by one: a stable number made
# from the code (its before/after snapshots carry the code itself).
HISTORY_ENTITY = "disposition"


def history_id(code: str) -> int:
    return zlib.crc32(code.encode()) & 0x7FFFFFFF


def _clean(values: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ValidationError(f"unknown field(s): {', '.join(sorted(unknown))}", field=min(unknown))
    clean: dict[str, Any] = {}
    if "code" in values:
        code = text(values, "code", 40, required=True) or ""
        if not CODE.match(code):
            raise ValidationError(
                "a disposition code is 2-40 lower-case letters, digits or '_', starting with "
                "a letter (e.g. parts_enquiry)",
                field="code",
            )
        clean["code"] = code
    if "label" in values:
        clean["label"] = text(values, "label", 100, required=True)
    if "sort" in values:
        clean["sort"] = integer(values, "sort", 0, 9999) or 0
    if "active" in values:
        clean["active"] = bool(flag(values, "active"))
    return clean


async def _find(session: AsyncSession, code: str) -> DispositionCode:
    row = await session.get(DispositionCode, code)
    if row is None:
        raise NotFound(f"no disposition code {code}")
    return row


async def create_code(db: Database, actor: Actor, values: Mapping[str, Any]) -> dict[str, Any]:
    clean = _clean({**values, "code": values.get("code"), "label": values.get("label")})
    async with db.transaction() as session:
        if await session.get(DispositionCode, clean["code"]) is not None:
            raise DuplicateCode(f"there is already a code {clean['code']}", field="code")
        if "sort" not in clean:  # new codes go to the end of the list
            last = await session.scalar(select(DispositionCode.sort).order_by(
                DispositionCode.sort.desc()).limit(1))  # fmt: skip
            clean["sort"] = (last or 0) + 10
        row = DispositionCode(**{"active": True, **clean})
        session.add(row)
        await session.flush()
        snapshot = admin_snapshot(row)
        await log_change(
            session, actor, HISTORY_ENTITY, history_id(row.code), "create", None, snapshot
        )
        return snapshot


async def update_code(
    db: Database, actor: Actor, code: str, values: Mapping[str, Any]
) -> dict[str, Any]:
    clean = _clean(values)
    async with db.transaction() as session:
        row = await _find(session, code)
        if "code" in clean and clean["code"] != row.code:
            raise ValidationError(
                "a code keeps its name (calls store it); disable it and add a new one",
                field="code",
            )
        before = admin_snapshot(row)
        for key, value in clean.items():
            setattr(row, key, value)
        await session.flush()
        after = admin_snapshot(row)
        if after != before:
            action = "disable" if before["active"] and not after["active"] else "update"
            await log_change(
                session, actor, HISTORY_ENTITY, history_id(row.code), action, before, after
            )
        return after


async def set_active(db: Database, actor: Actor, code: str, active: bool) -> dict[str, Any]:
    return await update_code(db, actor, code, {"active": active})


async def list_codes(db: Database) -> list[dict[str, Any]]:
    query = select(DispositionCode).order_by(DispositionCode.sort, DispositionCode.code)
    async with db.transaction() as session:
        return [admin_snapshot(r) for r in (await session.scalars(query)).all()]
