"""Ad-hoc closures (临时停止服务: a typhoon day, a company event) under /api/admin/closures.

A closure takes effect on the next call with no PBX reload: the hours check reads the table.
Times without an offset are Beijing time, as an admin in China types them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select

import agent_desktop.admin.api as admin_api
from agent_desktop.admin.actor import Actor
from agent_desktop.admin.changes import admin_snapshot, log_change
from agent_desktop.admin.validation import text
from agent_desktop.common.guards import context, require_roles
from agent_desktop.context import AppContext
from crm_core.business_hours import BEIJING
from crm_core.db import Database
from crm_core.errors import NotFound, ValidationError
from crm_core.models import CallQueue, QueueClosure


def _when(values: Mapping[str, Any], key: str) -> datetime:
    raw = values.get(key)
    if not isinstance(raw, str) or not raw.strip():
        raise ValidationError(f"{key} is required (e.g. 2026-09-15T08:00)", field=key)
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ValidationError(f"{key}: {raw!r} is not a date and time", field=key) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=BEIJING)).astimezone(UTC)


def _view(row: QueueClosure, queue: str | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "queue": queue,
        "starts_at": row.starts_at.astimezone(BEIJING).isoformat(),
        "ends_at": row.ends_at.astimezone(BEIJING).isoformat(),
        "reason": row.reason,
    }


async def add_closure(db: Database, actor: Actor, values: Mapping[str, Any]) -> dict[str, Any]:
    starts_at, ends_at = _when(values, "starts_at"), _when(values, "ends_at")
    if ends_at <= starts_at:
        raise ValidationError("ends_at must be after starts_at", field="ends_at")
    reason = text(values, "reason", 200, required=True) or ""
    queue_name = text(values, "queue", 40)
    async with db.transaction() as session:
        queue_id = None
        if queue_name:
            queue_id = await session.scalar(
                select(CallQueue.id).where(CallQueue.name == queue_name)
            )
            if queue_id is None:
                raise ValidationError(f"there is no queue {queue_name}", field="queue")
        row = QueueClosure(
            queue_id=queue_id,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=reason,
            created_by=actor.user_id,
        )
        session.add(row)
        await session.flush()
        await log_change(session, actor, "closure", row.id, "create", None, admin_snapshot(row))
        return _view(row, queue_name)


async def list_closures(db: Database, *, include_past: bool = False) -> list[dict[str, Any]]:
    async with db.transaction() as session:
        query = (
            select(QueueClosure, CallQueue.name)
            .outerjoin(CallQueue, CallQueue.id == QueueClosure.queue_id)
            .order_by(QueueClosure.starts_at)
        )
        if not include_past:
            query = query.where(QueueClosure.ends_at > datetime.now(UTC))
        return [_view(row, name) for row, name in await session.execute(query)]


async def remove_closure(db: Database, actor: Actor, closure_id: int) -> None:
    async with db.transaction() as session:
        row = await session.get(QueueClosure, closure_id)
        if row is None:
            raise NotFound(f"there is no closure {closure_id}")
        before = admin_snapshot(row)
        await session.delete(row)
        await log_change(session, actor, "closure", closure_id, "delete", before, None)


@require_roles("admin")
async def get_closures(request: web.Request) -> web.Response:
    past = request.query.get("past") == "1"
    return web.json_response(
        {"closures": await list_closures(context(request).db, include_past=past)}
    )


@require_roles("admin")
async def post_closure(request: web.Request) -> web.Response:
    body = await admin_api.body_of(request)
    row = await add_closure(context(request).db, admin_api.actor_of(request), body)
    return web.json_response(row, status=201)


@require_roles("admin")
async def delete_closure(request: web.Request) -> web.Response:
    raw = request.match_info["closure_id"]
    if not raw.isdigit():
        raise ValidationError("closure id must be a number", field="closure_id")
    await remove_closure(context(request).db, admin_api.actor_of(request), int(raw))
    return web.json_response({"deleted": int(raw)})


def setup(app: web.Application, _ctx: AppContext) -> None:
    app.router.add_get("/api/admin/closures", get_closures)
    app.router.add_post("/api/admin/closures", post_closure)
    app.router.add_delete("/api/admin/closures/{closure_id}", delete_closure)
