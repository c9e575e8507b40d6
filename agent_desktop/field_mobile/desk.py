"""The desktop's side of field work: photos and signatures shown to logged-in users who may
see the request (an audit row per view), and offering a work order to several technicians.

Who sees a request is the tickets feature's rule (tickets/api.py), repeated here because
features do not import each other: admins and agents all; supervisors and dispatchers their
region or office (all without a region); technicians only requests with an order of theirs.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agent_desktop.common.audit import audit
from agent_desktop.common.guards import current_user, require_roles
from agent_desktop.common.ipaccess import client_ip
from agent_desktop.common.sessions import SessionUser
from agent_desktop.context import CONTEXT_KEY, AppContext
from agent_desktop.field_mobile.uploads import store_for
from agent_desktop.services import ticketing_for
from crm_core.errors import NotFound, ValidationError
from ticketing import queries
from ticketing.errors import NotAllowed
from ticketing.journal import Actor
from ticketing.models import ServiceRequest, WorkOrder, WorkOrderFile

VIEWERS = ("agent", "supervisor", "admin", "technician", "dispatcher")


class FieldFileNotFound(NotFound):
    error_id = "field_file_not_found"


def _ctx(request: web.Request) -> AppContext:
    return request.app[CONTEXT_KEY]


def may_see(user: SessionUser, row: ServiceRequest, technicians: set[int]) -> bool:
    if user.role in ("admin", "agent"):
        return True
    if user.role in ("supervisor", "dispatcher"):
        return user.region is None or row.region == user.region or row.office == user.office
    return user.id in technicians


async def _file(request: web.Request) -> tuple[WorkOrderFile, ServiceRequest]:
    try:
        file_id = int(request.match_info["id"])
    except ValueError:
        raise FieldFileNotFound("no such file") from None
    async with _ctx(request).db.transaction() as session:
        row = await session.get(WorkOrderFile, file_id)
        order = await session.get(WorkOrder, row.work_order_id) if row else None
        parent = await session.get(ServiceRequest, order.request_id) if order else None
    if row is None or parent is None:
        raise FieldFileNotFound(f"field file {file_id} does not exist")
    return row, parent


@require_roles(*VIEWERS)
async def view_file(request: web.Request) -> web.StreamResponse:
    ctx, user = _ctx(request), current_user(request)
    row, parent = await _file(request)
    ip = client_ip(request, ctx.settings)
    technicians = await queries.technician_ids_of(ctx.db, parent.id)
    if not may_see(user, parent, technicians):
        detail = {"path": request.path, "request_id": parent.id}
        await audit(ctx, user, "access_denied", "field_file", str(row.id), ip, detail)
        raise NotAllowed("this work order is outside your region or work orders")
    path = store_for(ctx.settings).path(row.path)
    if not path.is_file():
        raise FieldFileNotFound(f"the file of {row.kind} {row.id} is missing from the store")
    detail = {"work_order_id": row.work_order_id, "kind": row.kind, "sha256": row.sha256}
    await audit(ctx, user, "field_file_viewed", "field_file", str(row.id), ip, detail)
    return web.FileResponse(
        path, headers={"Content-Type": row.content_type, "Cache-Control": "private, no-store"}
    )


def _ids(value: Any) -> list[int]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise ValidationError("technician_ids is a list of user ids", field="technician_ids")
    return list(value)


@require_roles("supervisor", "admin", "dispatcher")
async def offer(request: web.Request) -> web.Response:
    """POST /api/tickets/{id}/offer {technician_ids: [...], instructions}: 抢单."""
    ctx, user = _ctx(request), current_user(request)
    row = await queries.get_request(ctx.db, int(request.match_info["id"]))
    if not may_see(user, row, set()):
        raise NotAllowed("this request is outside your region")
    if user.role != "admin" and user.office and row.office and user.office != row.office:
        raise NotAllowed("only the office's supervisor or dispatcher offers its requests")
    try:
        body = await request.json()
    except ValueError:
        raise ValidationError("send a JSON object") from None
    if not isinstance(body, dict):
        raise ValidationError("send a JSON object")
    order = await ticketing_for(request.app).offers.offer(
        row.id,
        _ids(body.get("technician_ids")),
        Actor.user(user.id),
        instructions=body.get("instructions"),
    )
    return web.json_response(queries.order_dict(order), status=201)


def setup(app: web.Application, ctx: AppContext) -> None:
    app.router.add_get(r"/field/files/{id:\d+}", view_file)
    app.router.add_post(r"/api/tickets/{id:\d+}/offer", offer)
