"""Call queues as records: strategy, timings, announcements. Asterisk learns them on reload."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent_desktop.admin.actor import Actor
from agent_desktop.admin.changes import admin_snapshot, log_change
from agent_desktop.admin.errors import AdminRefused
from agent_desktop.admin.lookup import find_by_ref
from agent_desktop.admin.validation import flag, integer, text
from asterisk_conf.render import ROUTED_QUEUES
from crm_core.business_hours import check_calendar, parse_week
from crm_core.db import Database
from crm_core.errors import DuplicateCode, ValidationError
from crm_core.models import CallQueue, QueueMember, User

NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
STRATEGIES = ("ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "linear", "wrandom")
FIELDS = (
    "name",
    "display_name",
    "strategy",
    "ring_seconds",
    "wrapup_seconds",
    "max_wait_seconds",
    "weight",
    "announce_position",
    "announce_frequency",
    "active",
    # #18: opening hours, overflow, callback and the service-level thresholds
    "hours",
    "holiday_calendar",
    "overflow_seconds",
    "overflow_max_waiting",
    "overflow_target",
    "callback_enabled",
    "announce_holdtime",
    "service_level_seconds",
    "short_abandon_seconds",
)
OVERFLOW_TARGETS = ("voicemail", "callback")


async def find_queue(session: AsyncSession, ref: int | str) -> CallQueue:
    return await find_by_ref(session, CallQueue, CallQueue.name, ref, "queue")


def _clean(values: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ValidationError(f"unknown field(s): {', '.join(sorted(unknown))}", field=min(unknown))
    clean: dict[str, Any] = {}
    if "name" in values:
        name = text(values, "name", 40, required=True) or ""
        if not NAME.match(name):
            raise ValidationError(
                "a queue name is 2-40 lower-case letters, digits or '_', starting with a letter",
                field="name",
            )
        clean["name"] = name
    if "display_name" in values:
        clean["display_name"] = text(values, "display_name", 100, required=True)
    if "strategy" in values:
        strategy = text(values, "strategy", 20, required=True)
        if strategy not in STRATEGIES:
            raise ValidationError(
                f"strategy must be one of {', '.join(STRATEGIES)}", field="strategy"
            )
        clean["strategy"] = strategy
    ranges = {
        "ring_seconds": (5, 120),
        "wrapup_seconds": (0, 600),
        "max_wait_seconds": (30, 3600),
        "weight": (0, 100),
    }
    for key, (low, high) in ranges.items():
        if key in values:
            clean[key] = integer(values, key, low, high)
    if clean.get("weight", 0) is None:
        clean["weight"] = 0
    if "announce_frequency" in values:
        frequency = integer(values, "announce_frequency", 0, 600) or 0
        if 0 < frequency < 15:
            raise ValidationError(
                "announce_frequency is 0 (off) or at least 15 s", field="announce_frequency"
            )
        clean["announce_frequency"] = frequency
    for key in ("announce_position", "active", "callback_enabled", "announce_holdtime"):
        if key in values:
            clean[key] = bool(flag(values, key))
    clean.update(_clean_operations(values))
    return clean


def _clean_operations(values: Mapping[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    if "hours" in values:
        hours = text(values, "hours", 300)
        parse_week(hours)  # refuses what the hours check could not read, naming the part
        clean["hours"] = " ".join(hours.lower().split()) if hours else None
    if "holiday_calendar" in values:
        clean["holiday_calendar"] = check_calendar(str(values["holiday_calendar"] or ""))
    limits = {
        "overflow_seconds": (10, 3600),
        "overflow_max_waiting": (1, 500),
        "service_level_seconds": (5, 600),
        "short_abandon_seconds": (0, 60),
    }
    for key, (low, high) in limits.items():
        if key in values:
            clean[key] = integer(values, key, low, high)
    for key, default in (("service_level_seconds", 20), ("short_abandon_seconds", 5)):
        if key in clean and clean[key] is None:
            clean[key] = default
    if "overflow_target" in values:
        target = text(values, "overflow_target", 60) or None
        queue = target.removeprefix("queue:") if target else ""
        if (
            target
            and target not in OVERFLOW_TARGETS
            and not (target.startswith("queue:") and NAME.match(queue))
        ):
            raise ValidationError(
                "overflow_target is voicemail, callback or queue:<queue name>",
                field="overflow_target",
            )
        clean["overflow_target"] = target
    return clean


async def _check_overflow_queue(session: AsyncSession, row: CallQueue) -> None:
    target = row.overflow_target or ""
    if not target.startswith("queue:"):
        return
    name = target.removeprefix("queue:")
    if name == row.name:
        raise ValidationError("a queue cannot overflow into itself", field="overflow_target")
    found = await session.scalar(
        select(CallQueue.id).where(CallQueue.name == name, CallQueue.active.is_(True))
    )
    if found is None:
        raise ValidationError(f"there is no active queue {name}", field="overflow_target")


async def _view(session: AsyncSession, row: CallQueue) -> dict[str, Any]:
    data = admin_snapshot(row)
    members = await session.execute(
        select(User.username, QueueMember.penalty)
        .join(QueueMember, QueueMember.user_id == User.id)
        .where(QueueMember.queue_id == row.id)
        .order_by(QueueMember.penalty, User.username)
    )
    data["members"] = [{"username": u, "penalty": p} for u, p in members]
    data["routed"] = row.name in ROUTED_QUEUES
    return data


async def create_queue(db: Database, actor: Actor, values: Mapping[str, Any]) -> dict[str, Any]:
    clean = _clean(
        {**values, "name": values.get("name"), "display_name": values.get("display_name")}
    )
    async with db.transaction() as session:
        if await session.scalar(select(CallQueue.id).where(CallQueue.name == clean["name"])):
            raise DuplicateCode(f"there is already a queue {clean['name']}", field="name")
        defaults = {
            "strategy": "ringall",
            "weight": 0,
            "announce_position": False,
            "announce_frequency": 0,
            "active": True,
        }
        row = CallQueue(**{**defaults, **clean})
        await _check_overflow_queue(session, row)
        session.add(row)
        await session.flush()
        await log_change(session, actor, "queue", row.id, "create", None, admin_snapshot(row))
        return await _view(session, row)


async def update_queue(
    db: Database, actor: Actor, ref: int | str, values: Mapping[str, Any]
) -> dict[str, Any]:
    clean = _clean(values)
    async with db.transaction() as session:
        row = await find_queue(session, ref)
        if "name" in clean and clean["name"] != row.name:
            raise ValidationError(
                "a queue keeps its name (reports and the dialplan use it)", field="name"
            )
        if clean.get("active") is False and row.name in ROUTED_QUEUES:
            raise AdminRefused(f"calls are routed to {row.name}; it cannot be deactivated")
        before = admin_snapshot(row)
        for key, value in clean.items():
            setattr(row, key, value)
        await _check_overflow_queue(session, row)
        await session.flush()
        after = admin_snapshot(row)
        if after != before:
            await log_change(session, actor, "queue", row.id, "update", before, after)
        return await _view(session, row)


async def list_queues(db: Database) -> list[dict[str, Any]]:
    async with db.transaction() as session:
        rows = (await session.scalars(select(CallQueue).order_by(CallQueue.name))).all()
        return [await _view(session, r) for r in rows]


async def queue_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(CallQueue)) or 0)
