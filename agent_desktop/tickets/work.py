"""Work pages: the review queue (技术科审核), the office's dispatch board (one-click assign), and
the follow-up list (回访) with click-to-dial.

Click-to-dial from here sends a phone *id*, never digits: numbers stay masked on the page
(docs/security.md), and the server looks the number up for the follow-up's own customer
before it calls the same `cti.click_to_dial` that POST /api/dial uses (one request id per
click, so a repeated click is one call).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select

from agent_desktop.common.access import sees_full_numbers
from agent_desktop.common.guards import current_user, require_roles
from agent_desktop.common.pages import add_nav
from agent_desktop.context import CONTEXT_KEY, AppContext
from agent_desktop.services import AMI_KEY
from agent_desktop.tickets.api import _body, _int, _my_follow_up, _visible
from agent_desktop.tickets.data import (
    customers_by_id,
    dialable_phones,
    phone_number_of,
    user_names,
)
from agent_desktop.tickets.labels import ticket_page
from crm_core.models import Office, Role, User
from cti.click_to_dial import DialFailed, click_to_dial
from ticketing import queries
from ticketing.errors import NotAllowed
from ticketing.models import ServiceRequest, WorkOrder
from ticketing.states import WorkOrderState

REASSIGN_STATES = (WorkOrderState.NEEDS_PARTS.value, WorkOrderState.RETURN_TO_FACTORY.value)


async def _offices(request: web.Request) -> list[str]:
    """The choices for an approval's office: the active offices an admin set up, plus any
    office an active technician still names (so no field staff is ever unreachable)."""
    async with request.app[CONTEXT_KEY].db.transaction() as s:
        staffed = await s.scalars(
            select(User.office)
            .where(User.role == Role.TECHNICIAN.value, User.office.is_not(None), User.active)
            .distinct()
        )
        names = set(staffed.all())
        names |= set((await s.scalars(select(Office.name).where(Office.active))).all())
        return sorted(o for o in names if o)


async def _with_customers(request: web.Request, rows: list[dict[str, Any]]) -> dict[int, str]:
    found = await customers_by_id(request.app[CONTEXT_KEY].db, [r["customer_id"] for r in rows])
    return {k: c.name for k, c in found.items()}


@require_roles("supervisor", "admin")
async def review_page(request: web.Request) -> web.Response:
    user = current_user(request)
    rows = await queries.list_requests(
        request.app[CONTEXT_KEY].db,
        states=queries.REVIEW_STATES,
        region=user.region if user.role == "supervisor" else None,
    )
    return ticket_page(
        request,
        "tickets_review.html",
        rows=rows,
        customers=await _with_customers(request, rows),
        offices=await _offices(request),
    )


async def _stalled_orders(request: web.Request, office: str | None) -> list[dict[str, Any]]:
    """Orders waiting for parts or back at the factory: the supervisor reassigns them."""
    query = (
        select(WorkOrder, ServiceRequest.number)
        .join(ServiceRequest, ServiceRequest.id == WorkOrder.request_id)
        .where(WorkOrder.state.in_(REASSIGN_STATES))
        .order_by(WorkOrder.id)
    )
    if office:
        query = query.where(ServiceRequest.office == office)
    async with request.app[CONTEXT_KEY].db.transaction() as s:
        return [{**queries.order_dict(o), "number": n} for o, n in (await s.execute(query)).all()]


@require_roles("supervisor", "admin", "dispatcher")
async def dispatch_page(request: web.Request) -> web.Response:
    user = current_user(request)
    scoped = user.role in ("supervisor", "dispatcher")
    office = user.office if scoped else request.query.get("office") or None
    board = await queries.dispatch_board(request.app[CONTEXT_KEY].db, office, None)
    stalled = await _stalled_orders(request, office)
    names = await user_names(request.app[CONTEXT_KEY].db, [o["technician_id"] for o in stalled])
    return ticket_page(
        request,
        "tickets_dispatch.html",
        office=office,
        waiting=board["waiting"],
        technicians=board["technicians"],
        customers=await _with_customers(request, board["waiting"]),
        stalled=stalled,
        names=names,
    )


@require_roles("agent", "supervisor", "admin")
async def follow_ups_page(request: web.Request) -> web.Response:
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    mine = user.id if user.role == "agent" or request.query.get("mine") else None
    rows = await queries.follow_up_list(ctx.db, mine)
    requests = {}
    async with ctx.db.transaction() as s:
        for row in rows:
            found = await s.get(ServiceRequest, row["request_id"])
            if found is not None:
                requests[found.id] = found
    full = sees_full_numbers(ctx.settings, user)
    phones = {r.id: await dialable_phones(ctx.db, r.customer_id, full) for r in requests.values()}
    customers = await customers_by_id(ctx.db, [r.customer_id for r in requests.values()])
    return ticket_page(
        request,
        "tickets_follow_ups.html",
        rows=rows,
        requests=requests,
        phones=phones,
        customers={k: c.name for k, c in customers.items()},
        names=await user_names(ctx.db, [r["assignee_id"] for r in rows]),
        can_dial=bool(user.phone_interface),
    )


@require_roles("agent", "supervisor", "admin")
async def dial_follow_up(request: web.Request) -> web.Response:
    """{phone_id, request_id} → ring my phone, then the customer (see the module doc)."""
    follow_up = await _my_follow_up(request)
    row = await queries.get_request(request.app[CONTEXT_KEY].db, follow_up.request_id)
    return await _dial_customer(request, row)


@require_roles("agent", "supervisor", "admin")
async def dial_request(request: web.Request) -> web.Response:
    """{phone_id, request_id} from a request's page (a dispatch or status call): the call
    belongs to that request, like a follow-up call."""
    row = await _visible(request, int(request.match_info["id"]))
    return await _dial_customer(request, row)


async def _dial_customer(request: web.Request, row: ServiceRequest) -> web.Response:

    user, ctx = current_user(request), request.app[CONTEXT_KEY]
    body = await _body(request)
    number = await phone_number_of(ctx.db, row.customer_id, _int(body.get("phone_id"), "phone_id"))
    if number is None:
        raise NotAllowed("that phone is not this customer's")
    if AMI_KEY not in request.app:
        raise DialFailed("telephony is not running on this server")
    result = await click_to_dial(
        ctx.db,
        request.app[AMI_KEY],
        server=ctx.settings.pbx_instance,
        agent_id=user.id,
        interface=user.phone_interface,
        number=number,
        request_id=str(body.get("request_id", "")),
        customer_id=row.customer_id,
        service_request_id=row.id,
    )
    result.pop("number", None)  # the page never gets the digits
    return web.json_response(result, status=201 if result["new"] else 200)


def setup(app: web.Application, ctx: AppContext) -> None:

    router = app.router
    router.add_get("/tickets/review", review_page)
    router.add_get("/tickets/dispatch", dispatch_page)
    router.add_get("/tickets/follow-ups", follow_ups_page)
    router.add_post(r"/tickets/follow-ups/{id:\d+}/dial", dial_follow_up)
    router.add_post(r"/tickets/{id:\d+}/dial", dial_request)
    add_nav(app, "/tickets/review", "Review queue", ("supervisor", "admin"))
    add_nav(app, "/tickets/dispatch", "Dispatch board", ("supervisor", "admin", "dispatcher"))
    add_nav(app, "/tickets/follow-ups", "Follow-ups", ("agent", "supervisor", "admin"))
