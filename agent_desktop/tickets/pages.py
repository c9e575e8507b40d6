"""Ticketing pages: the request list, the create form (from a call or a customer), and one
request's page with its timeline. Writes go through the JSON API (tickets/api.py) from
static/tickets.js, so the rules and the object-level checks exist once.

Review queue, dispatch board and follow-ups are in work.py, reports in reports.py; the
package's `setup` registers all of them.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select

from agent_desktop.common.access import customer_for, sees_full_numbers
from agent_desktop.common.customer_data import scoped_search
from agent_desktop.common.guards import current_user, require_roles
from agent_desktop.common.pages import add_nav
from agent_desktop.common.sessions import SessionUser
from agent_desktop.context import CONTEXT_KEY, AppContext
from agent_desktop.tickets.api import AGENT_ACTIONS, SUPERVISOR_ACTIONS, _visible
from agent_desktop.tickets.data import (
    customers_by_id,
    dialable_phones,
    timeline,
    user_names,
    vehicle_of,
)
from agent_desktop.tickets.labels import NEEDS_REASON, ticket_page
from crm_core.errors import HotlineError
from crm_core.models import Contact, Vehicle
from recordings.access import Viewer
from ticketing import queries
from ticketing.mobile_view import field_records
from ticketing.models import ServiceRequest, WorkOrder
from ticketing.states import (
    Category,
    Channel,
    Priority,
    RequestAction,
    RequestState,
    request_machine,
)

STAFF = ("agent", "supervisor", "admin")
EVERYONE = ("agent", "supervisor", "technician", "admin")
OPEN_STATES = tuple(
    s.value for s in RequestState if s not in (RequestState.CLOSED, RequestState.RESOLVED_BY_PHONE)
)


def _id(request: web.Request, key: str = "id") -> int:
    return int(request.match_info[key])  # the route pattern allows digits only


async def _listing(request: web.Request, user: SessionUser, states: tuple[str, ...]) -> list[Any]:
    db = request.app[CONTEXT_KEY].db
    if user.role == "technician":
        query = (
            select(ServiceRequest)
            .join(WorkOrder, WorkOrder.request_id == ServiceRequest.id)
            .where(WorkOrder.technician_id == user.id, ServiceRequest.state.in_(states))
            .distinct()
            .order_by(ServiceRequest.id.desc())
            .limit(200)
        )
        async with db.transaction() as s:
            return [queries.request_dict(r) for r in (await s.scalars(query)).all()]
    region = user.region if user.role == "supervisor" else None
    return await queries.list_requests(db, states=states, region=region)


@require_roles(*EVERYONE)
async def list_page(request: web.Request) -> web.Response:
    user = current_user(request)
    show = request.query.get("show", "open")
    states = OPEN_STATES if show == "open" else tuple(s.value for s in RequestState)
    rows = await _listing(request, user, states)
    customers = await customers_by_id(request.app[CONTEXT_KEY].db, [r["customer_id"] for r in rows])
    names = {k: c.name for k, c in customers.items()}
    return ticket_page(request, "tickets_list.html", rows=rows, customers=names, show=show)


async def _customer_choices(
    request: web.Request, user: SessionUser, customer_id: int
) -> dict[str, Any]:
    db = request.app[CONTEXT_KEY].db
    customer = await customer_for(db, request, user, customer_id)
    async with db.transaction() as s:
        vehicles = (
            await s.scalars(
                select(Vehicle).where(
                    Vehicle.customer_id == customer.id, Vehicle.deleted.is_(False)
                )
            )
        ).all()
        contacts = (
            await s.scalars(
                select(Contact).where(
                    Contact.customer_id == customer.id, Contact.deleted.is_(False)
                )
            )
        ).all()
    return {"customer": customer, "vehicles": list(vehicles), "contacts": list(contacts)}


@require_roles(*STAFF)
async def new_page(request: web.Request) -> web.Response:
    """The create form. From a pop: ?customer_id=…&linkedid=… (the call it came from)."""
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    query = request.query.get("q", "").strip()
    hits, choices = [], None
    raw_id = request.query.get("customer_id", "")
    if raw_id.isdigit():
        choices = await _customer_choices(request, user, int(raw_id))
    elif query:
        try:
            hits = await scoped_search(ctx.db, user, query, sees_full_numbers(ctx.settings, user))
        except HotlineError:
            hits = []
    return ticket_page(
        request,
        "tickets_new.html",
        query=query,
        hits=hits,
        choices=choices,
        linkedid=request.query.get("linkedid", "")[:64],
        categories=[c.value for c in Category],
        priorities=[p.value for p in Priority],
        channels=[c.value for c in Channel],
    )


def _actions_for(user: SessionUser, row: ServiceRequest) -> list[str]:
    """Buttons on the request page: what the machine allows now, the role may do, and the
    service accepts directly (some actions belong to the dispatch and follow-up flows)."""
    if user.role == "technician":
        return []
    allowed = set(SUPERVISOR_ACTIONS if user.role in ("supervisor", "admin") else AGENT_ACTIONS)
    if row.category != Category.COMPLAINT:
        allowed.discard(RequestAction.COMPLETE.value)  # the technician's report completes it
    if row.state == RequestState.FOLLOW_UP:
        allowed.discard(RequestAction.CLOSE.value)  # the follow-up's result closes it
    machine = request_machine(row.category)
    return [a.value for a in machine.allowed(RequestState(row.state)) if a.value in allowed]


@require_roles(*EVERYONE)
async def detail_page(request: web.Request) -> web.Response:
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    row = await _visible(request, _id(request))
    detail = await queries.request_detail(ctx.db, row.id)
    full = sees_full_numbers(ctx.settings, user)
    entries = await timeline(ctx.db, row.id, full, _listener(user))
    people = [o["technician_id"] for o in detail["work_orders"]]
    # Photos, signature, notes and parts from the technician's mobile page (issue #21 §2).
    field = await field_records(ctx.db, [o["id"] for o in detail["work_orders"]])
    people += [f["assignee_id"] for f in detail["follow_ups"]] + [row.created_by_id]
    customers = await customers_by_id(ctx.db, [row.customer_id])
    return ticket_page(
        request,
        "tickets_detail.html",
        r=row,
        detail=detail,
        customer=customers.get(row.customer_id),
        vehicle=await vehicle_of(ctx.db, row.vehicle_id),
        names=await user_names(ctx.db, people),
        entries=entries,
        field=field,
        actions=_actions_for(user, row),
        needs_reason=NEEDS_REASON,
        # Calls placed from here belong to this request (technicians do not dial from it).
        phones=await dialable_phones(ctx.db, row.customer_id, full)
        if user.role in ("agent", "supervisor", "admin")
        else [],
        can_dial=bool(user.phone_interface),
    )


def _listener(user: SessionUser) -> Viewer:
    return Viewer(user.id, user.role, user.region)


@require_roles(*EVERYONE)
async def timeline_api(request: web.Request) -> web.Response:
    """The merged timeline as JSON: transitions, calls, recordings, SMS both ways."""
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    row = await _visible(request, _id(request))
    full = sees_full_numbers(ctx.settings, user)
    entries = await timeline(ctx.db, row.id, full, _listener(user))
    return web.json_response(
        {"request": queries.request_dict(row), "timeline": [e.as_dict() for e in entries]}
    )


def setup(app: web.Application, ctx: AppContext) -> None:
    router = app.router
    router.add_get("/tickets", list_page)
    router.add_get("/tickets/new", new_page)
    router.add_get(r"/tickets/{id:\d+}", detail_page)
    router.add_get(r"/api/tickets/{id:\d+}/timeline", timeline_api)
    add_nav(app, "/tickets", "Service requests", EVERYONE)
