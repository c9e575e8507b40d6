"""Ticketing REST API (JSON) with object-level permissions, plus the SLA worker and the IVR
survey subscription.

Who may do what:
- agents and admins see every request (the hotline serves every caller); agents create,
  submit, resolve by phone, resubmit, close and reopen;
- supervisors review (技术科审核), approve, reject and handle complaints; a supervisor with a
  region sees that region's requests (and its office's), one without a region sees all;
- the office supervisor (same office as the request) dispatches and reassigns;
- a technician sees only requests with a work order of theirs, and reports only on their own;
- a follow-up is worked by its assignee (or a supervisor/admin).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

from aiohttp import web

from agent_desktop.common.access import sees_full_numbers
from agent_desktop.common.guards import current_user, require_roles
from agent_desktop.common.sessions import SessionUser
from agent_desktop.context import CONTEXT_KEY, AppContext
from agent_desktop.services import Ticketing, ticketing_for
from crm_core.errors import ValidationError
from crm_core.events import SurveyAnswered
from crm_core.phones import mask, mask_in_text
from sms_gateway.outbox import messages_for_request
from ticketing import queries
from ticketing.errors import NotAllowed
from ticketing.journal import Actor
from ticketing.models import FollowUp, ServiceRequest, WorkOrder
from ticketing.reports import report_csv, ticket_report
from ticketing.sla import run_sla_worker
from ticketing.states import RequestAction, WorkOrderAction
from ticketing.work_orders import FieldReport

AGENT_ACTIONS = {"submit", "resolve_by_phone", "resubmit", "close", "reopen"}
SUPERVISOR_ACTIONS = AGENT_ACTIONS | {
    "start_review",
    "approve",
    "reject",
    "handle_complaint",
    "complete",
}


def _services(request: web.Request) -> Ticketing:
    return ticketing_for(request.app)


def _ctx(request: web.Request) -> AppContext:
    return request.app[CONTEXT_KEY]


def _int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValidationError(f"{field} must be a whole number", field=field)
    try:
        return int(value)
    except ValueError:
        raise ValidationError(f"{field} must be a whole number", field=field) from None


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise ValidationError("send a JSON object") from None
    if not isinstance(data, dict):
        raise ValidationError("send a JSON object")
    return data


def _sees(user: SessionUser, row: ServiceRequest, technicians: set[int]) -> bool:
    if user.role in ("admin", "agent"):
        return True
    if user.role in ("supervisor", "dispatcher"):
        return user.region is None or row.region == user.region or row.office == user.office
    return user.id in technicians


async def _visible(request: web.Request, request_id: int) -> ServiceRequest:
    user, db = current_user(request), _ctx(request).db
    row = await queries.get_request(db, request_id)
    if not _sees(user, row, await queries.technician_ids_of(db, request_id)):
        raise NotAllowed("this request is outside your region or work orders")
    return row


def _office_supervisor(user: SessionUser, office: str | None) -> None:
    if user.role == "admin":
        return
    # The office's dispatcher (调度员) dispatches like its supervisor.
    if user.role not in ("supervisor", "dispatcher") or (
        user.office and office and user.office != office
    ):
        raise NotAllowed("only the office's supervisor or dispatcher dispatches its requests")


@require_roles("agent", "supervisor", "admin")
async def create_request(request: web.Request) -> web.Response:
    user = current_user(request)
    row = await _services(request).requests.create(await _body(request), Actor.user(user.id))
    return web.json_response(queries.request_dict(row), status=201)


@require_roles("agent", "supervisor", "admin", "technician", "dispatcher")
async def view_request(request: web.Request) -> web.Response:
    request_id = _int(request.match_info["id"], "id")
    await _visible(request, request_id)
    db = _ctx(request).db
    detail = await queries.request_detail(db, request_id)
    async with db.transaction() as session:
        sms = await messages_for_request(session, request_id)
    # The work-order SMS carries the customer's number and actors can be "sms:+86…": the
    # same masking as the pages for roles that do not see full numbers.
    full = sees_full_numbers(_ctx(request).settings, current_user(request))
    shown = (lambda text: text) if full else mask_in_text
    for record in detail["transitions"]:
        record["actor"] = shown(record["actor"] or "") or record["actor"]
        record["reason"] = shown(record["reason"] or "") or record["reason"]
    detail["sms"] = [
        {
            "id": m.id,
            "to": m.to if full else mask(m.to),
            "body": shown(m.body),
            "state": m.state,
            "status": m.provider_status,
            "created_at": m.created_at.isoformat(),
        }
        for m in sms
    ]
    return web.json_response(detail)


@require_roles("agent", "supervisor", "admin")
async def act_on_request(request: web.Request) -> web.Response:
    user = current_user(request)
    request_id = _int(request.match_info["id"], "id")
    body = await _body(request)
    action = str(body.get("action", ""))
    allowed = SUPERVISOR_ACTIONS if user.role in ("supervisor", "admin") else AGENT_ACTIONS
    if action not in allowed:
        raise NotAllowed(f"your role may not {action or 'do that'}", allowed=sorted(allowed))
    await _visible(request, request_id)
    row = await _services(request).requests.act(
        request_id,
        RequestAction(action),
        Actor.user(user.id),
        reason=body.get("reason"),
        office=body.get("office"),
    )
    return web.json_response(queries.request_dict(row))


@require_roles("supervisor", "admin")
async def review_queue(request: web.Request) -> web.Response:
    user = current_user(request)
    rows = await queries.list_requests(
        _ctx(request).db,
        states=queries.REVIEW_STATES,
        region=user.region if user.role == "supervisor" else None,
    )
    return web.json_response({"requests": rows})


@require_roles("supervisor", "admin", "dispatcher")
async def dispatch_board(request: web.Request) -> web.Response:
    user = current_user(request)
    scoped = user.role in ("supervisor", "dispatcher")
    office = user.office if scoped else request.query.get("office")
    board = await queries.dispatch_board(_ctx(request).db, office, None)
    return web.json_response(board)


@require_roles("supervisor", "admin", "dispatcher")
async def dispatch(request: web.Request) -> web.Response:
    user = current_user(request)
    row = await _visible(request, _int(request.match_info["id"], "id"))
    _office_supervisor(user, row.office)
    body = await _body(request)
    order = await _services(request).orders.dispatch(
        row.id,
        _int(body.get("technician_id"), "technician_id"),
        Actor.user(user.id),
        instructions=body.get("instructions"),
    )
    return web.json_response(queries.order_dict(order), status=201)


async def _order(request: web.Request) -> WorkOrder:
    db = _ctx(request).db
    order_id = _int(request.match_info["id"], "id")
    async with db.transaction() as session:
        order = await session.get(WorkOrder, order_id)
    if order is None:
        raise web.HTTPNotFound(reason=f"work order {order_id} does not exist")
    return order


@require_roles("supervisor", "admin", "dispatcher")
async def reassign(request: web.Request) -> web.Response:
    user = current_user(request)
    order = await _order(request)
    row = await _visible(request, order.request_id)
    _office_supervisor(user, row.office)
    body = await _body(request)
    new = await _services(request).orders.reassign(
        order.id,
        _int(body.get("technician_id"), "technician_id"),
        Actor.user(user.id),
        str(body.get("reason") or ""),
        instructions=body.get("instructions"),
    )
    return web.json_response(queries.order_dict(new), status=201)


@require_roles("technician", "supervisor", "admin")
async def report(request: web.Request) -> web.Response:
    user = current_user(request)
    order = await _order(request)
    if user.role == "technician" and order.technician_id != user.id:
        raise NotAllowed("this work order is assigned to someone else")
    row = await _visible(request, order.request_id)
    if user.role == "supervisor":
        _office_supervisor(user, row.office)
    body = await _body(request)
    eta = None
    if body.get("eta"):
        try:
            eta = time.fromisoformat(str(body["eta"]))
        except ValueError:
            raise ValidationError("eta looks like 14:30", field="eta") from None
    try:
        action = WorkOrderAction(str(body.get("action")))
    except ValueError:
        raise ValidationError("unknown work-order action", field="action") from None
    updated = await _services(request).orders.report(
        order.id, FieldReport(action, eta, body.get("text")), Actor.user(user.id)
    )
    return web.json_response(queries.order_dict(updated))


@require_roles("agent", "supervisor", "admin")
async def follow_ups(request: web.Request) -> web.Response:
    user = current_user(request)
    mine = user.id if user.role == "agent" or request.query.get("mine") else None
    return web.json_response({"follow_ups": await queries.follow_up_list(_ctx(request).db, mine)})


async def _my_follow_up(request: web.Request) -> FollowUp:
    user = current_user(request)
    follow_up_id = _int(request.match_info["id"], "id")
    async with _ctx(request).db.transaction() as session:
        row = await session.get(FollowUp, follow_up_id)
    if row is None:
        raise web.HTTPNotFound(reason=f"follow-up {follow_up_id} does not exist")
    if user.role == "agent" and row.assignee_id != user.id:
        raise NotAllowed("this follow-up is assigned to someone else")
    return row


@require_roles("agent", "supervisor", "admin")
async def follow_up_action(request: web.Request) -> web.Response:
    user = current_user(request)
    row = await _my_follow_up(request)
    body = await _body(request)
    service = _services(request).follow_ups
    what = request.match_info["what"]
    if what == "no-answer":
        row = await service.no_answer(row.id, Actor.user(user.id), body.get("note"))
    elif what == "result":
        row = await service.record_result(
            row.id, _int(body.get("score"), "score"), Actor.user(user.id), body.get("comment")
        )
    elif what == "call":
        await service.attach_call(row.id, str(body.get("linkedid") or "")[:64])
    else:
        raise web.HTTPNotFound()
    return web.json_response(queries.follow_up_dict(row))


def _moment(request: web.Request, key: str) -> datetime | None:
    raw = request.query.get(key)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationError(f"{key} looks like 2026-03-01", field=key) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _period(request: web.Request) -> tuple[datetime, datetime]:
    until = _moment(request, "until") or datetime.now(UTC)
    return _moment(request, "since") or until - timedelta(days=30), until


@require_roles("supervisor", "admin")
async def reports(request: web.Request) -> web.StreamResponse:
    since, until = _period(request)
    data = await ticket_report(_ctx(request).db, since, until)
    if request.query.get("format") == "csv":
        return web.Response(
            text=report_csv(data),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": 'attachment; filename="ticket-report.csv"'},
        )
    return web.json_response(data)


def setup(app: web.Application, ctx: AppContext) -> None:
    services = ticketing_for(app)

    async def on_survey(event: SurveyAnswered) -> None:
        await services.follow_ups.apply_survey(event)

    ctx.bus.subscribe(SurveyAnswered, on_survey)
    router = app.router
    router.add_post("/api/tickets", create_request)
    router.add_get("/api/tickets/review-queue", review_queue)
    router.add_get("/api/tickets/reports", reports)
    router.add_get("/api/tickets/{id:\\d+}", view_request)
    router.add_post("/api/tickets/{id:\\d+}/actions", act_on_request)
    router.add_post("/api/tickets/{id:\\d+}/dispatch", dispatch)
    router.add_get("/api/dispatch-board", dispatch_board)
    router.add_post("/api/work-orders/{id:\\d+}/reassign", reassign)
    router.add_post("/api/work-orders/{id:\\d+}/report", report)
    router.add_get("/api/follow-ups", follow_ups)
    router.add_post("/api/follow-ups/{id:\\d+}/{what}", follow_up_action)
    app.cleanup_ctx.append(_sla_worker)


async def _sla_worker(app: web.Application) -> AsyncIterator[None]:
    ctx: AppContext = app[CONTEXT_KEY]
    tctx, every = ticketing_for(app).ctx, float(ctx.settings.sla_check_seconds)
    ctx.cluster.singleton("sla-check", lambda: run_sla_worker(tctx, every))  # on the leader
    yield
    await ctx.cluster.stop_singleton("sla-check")
