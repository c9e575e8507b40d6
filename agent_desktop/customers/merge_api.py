"""Merge duplicate customers, undo a merge, and restore a version from the change history.

Merging is for supervisors and admins, on two customers both inside their scope; it is
audited and undone through history (unmerge). crm_core moves its own rows; calls, service
requests and recordings follow on the bus (merge_wiring.py). Restoring a version is an edit
like any other: an editing role, the customer in scope, a new history row.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from agent_desktop.common.access import customer_for
from agent_desktop.common.audit import audit
from agent_desktop.common.guards import current_user, require_roles
from agent_desktop.common.ipaccess import client_ip
from agent_desktop.context import CONTEXT_KEY, AppContext
from agent_desktop.customers.edit_support import (
    EDIT_ROLES,
    MERGE_ROLES,
    body_of,
    edit_errors,
    match_id,
    tokens,
)
from agent_desktop.customers.history_view import customer_history, latest_merge_of
from crm_core import duplicates, history
from crm_core.db import Database
from crm_core.errors import HistoryError, MergeRefused, NotFound, ValidationError
from crm_core.merge_follow import MOVE_ENTITY
from crm_core.models import ChangeRecord, Customer, Vehicle
from crm_core.models import Contact as ContactRow


async def _target(request: web.Request, body: dict[str, Any]) -> Customer:
    """The survivor, by id (`into`) or by customer code (`into_code`)."""
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    into, code = body.get("into"), body.get("into_code")
    if isinstance(code, str) and code.strip():
        async with ctx.db.transaction() as session:
            found = await session.scalar(select(Customer.id).where(Customer.code == code.strip()))
        if found is None:
            raise NotFound(f"no customer with code {code.strip()}", field="into_code")
        into = found
    if isinstance(into, bool) or not isinstance(into, int | str) or not str(into).isdigit():
        raise ValidationError(
            "into must be the id of the customer to keep (or into_code its code)", field="into"
        )
    return await customer_for(ctx.db, request, user, int(into))


async def _moves(db: Database, change: ChangeRecord) -> dict[str, list[int]]:
    moved: dict[str, list[int]] = dict((change.after or {}).get("moved", {}))
    async with db.transaction() as session:
        rows = (
            await session.scalars(
                select(ChangeRecord).where(
                    ChangeRecord.entity == MOVE_ENTITY, ChangeRecord.entity_id == change.id
                )
            )
        ).all()
    for row in rows:
        moved[row.action] = list((row.after or {}).get("ids", []))
    return moved


@edit_errors
@require_roles(*MERGE_ROLES)
async def merge_customer(request: web.Request) -> web.Response:
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    source = await customer_for(ctx.db, request, user, match_id(request, "customer_id"))
    target = await _target(request, await body_of(request))
    change = await duplicates.merge(ctx.db, source.id, target.id, user_id=user.id, bus=ctx.bus)
    moved = await _moves(ctx.db, change)
    await audit(
        ctx,
        user,
        "customer_merged",
        "customer",
        str(source.id),
        client_ip(request, ctx.settings),
        {"target_id": target.id, "change_id": change.id, "moved": moved},
    )
    return web.json_response(
        {"change_id": change.id, "source_id": source.id, "target_id": target.id, "moved": moved}
    )


@edit_errors
@require_roles(*MERGE_ROLES)
async def unmerge_customer(request: web.Request) -> web.Response:
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    source = await customer_for(ctx.db, request, user, match_id(request, "customer_id"))
    merge_id = await latest_merge_of(ctx.db, source.id)
    if merge_id is None:
        raise MergeRefused(f"customer {source.id} is not merged into another customer")
    target_id = source.merged_into_id
    change = await duplicates.unmerge(ctx.db, merge_id, user_id=user.id, bus=ctx.bus)
    await audit(
        ctx,
        user,
        "customer_unmerged",
        "customer",
        str(source.id),
        client_ip(request, ctx.settings),
        {"target_id": target_id, "merge_change_id": merge_id, "change_id": change.id},
    )
    return web.json_response(
        {"change_id": change.id, "merge_change_id": merge_id, "source_id": source.id}
    )


async def _customer_of_change(db: Database, change: ChangeRecord) -> int:
    if change.entity == "customer":
        return change.entity_id
    async with db.transaction() as session:
        row: ContactRow | Vehicle | None = (
            await session.get(ContactRow, change.entity_id)
            if change.entity == "contact"
            else await session.get(Vehicle, change.entity_id)
        )
    if row is None:
        raise NotFound(f"{change.entity} {change.entity_id} does not exist")
    return row.customer_id


@edit_errors
@require_roles(*EDIT_ROLES)
async def restore_version(request: web.Request) -> web.Response:
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    change_id = match_id(request, "change_id")
    async with ctx.db.transaction() as session:
        change = await session.get(ChangeRecord, change_id)
    if change is None or change.entity not in history.ENTITIES:
        raise NotFound(f"change #{change_id} does not exist")
    customer = await customer_for(ctx.db, request, user, await _customer_of_change(ctx.db, change))
    if change.action in ("merge", "merge_in"):
        raise HistoryError("a merge is undone with unmerge, not restored", change_id=change_id)
    if customer.merged_into_id is not None:
        raise HistoryError(
            f"customer {customer.id} is merged into {customer.merged_into_id}: undo the merge first"
        )
    try:
        record = await history.restore(
            ctx.db, change.entity, change.entity_id, change_id=change_id, user_id=user.id
        )
    except IntegrityError:
        raise HistoryError(
            "that version clashes with another record now (the same VIN or code)",
            change_id=change_id,
        ) from None
    token = (await tokens(ctx.db, change.entity, [change.entity_id])).get(change.entity_id)
    return web.json_response(
        {
            "change_id": record.id,
            "restored_to": change_id,
            "entity": change.entity,
            "entity_id": change.entity_id,
            "note": record.note,
            "version": token,
        }
    )


async def history_api(request: web.Request) -> web.Response:
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    customer = await customer_for(ctx.db, request, user, match_id(request, "customer_id"))
    rows = await customer_history(ctx.db, customer.id)
    return web.json_response({"history": [r.as_dict() for r in rows]})


def setup(app: web.Application, ctx: AppContext) -> None:
    customer = r"/api/customers/{customer_id:\d+}"
    app.router.add_post(customer + "/merge", merge_customer)
    app.router.add_post(customer + "/unmerge", unmerge_customer)
    app.router.add_get(customer + "/history", history_api)
    app.router.add_post(r"/api/history/{change_id:\d+}/restore", restore_version)
