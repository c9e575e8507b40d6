"""JSON endpoints the agent desktop needs beyond the CTI ones (calls/cti.py):

- POST /api/customers/duplicates {name, phone, address?}: the live duplicate warning of the
  quick-create form. Only customers in the user's scope are named; others are only counted.
- POST /api/customers {name, phone, kind?, city?, address?, allow_duplicate?}: quick-create
  an unknown caller, owned by the agent so it stays in their scope. Audited.
- GET /api/calls/by-linkedid/{linkedid}: the call row of a pop (scoped like call_queries).
- POST /api/calls/{call_id}/customer {customer_id | null}: link the call to the chosen
  candidate, or unlink it ("a different caller").
- GET /api/desktop/reminders: callbacks due, follow-ups due, contacts' birthdays this month,
  and the SLA breaches still standing that concern the user (sla_reminders.py).

Writes carry CSRF (auth middleware); object checks answer 404 and are audited (access.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import extract, false, select

import agent_desktop.calls.sla_reminders as sla_reminders
from agent_desktop.common.access import can_see_customer, customer_for, customer_scope, refuse
from agent_desktop.common.audit import audit
from agent_desktop.common.guards import current_user, require_roles
from agent_desktop.common.ipaccess import client_ip
from agent_desktop.common.sessions import SessionUser
from agent_desktop.context import CONTEXT_KEY, AppContext
from agent_desktop.services import HUB_KEY
from crm_core.customers import CustomerService
from crm_core.duplicates import find_duplicates
from crm_core.errors import ValidationError
from crm_core.models import Contact, Customer
from crm_core.phones import normalize
from cti import call_queries
from cti.models import Call, ScreenPop
from ticketing.queries import follow_up_list

DESK_ROLES = ("agent", "supervisor", "admin")
MAX_NAME = 100
SHANGHAI = timedelta(hours=8)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise ValidationError("send a JSON object") from None
    if not isinstance(data, dict):
        raise ValidationError("send a JSON object")
    return data


def _text(body: dict[str, Any], key: str, limit: int, required: bool = False) -> str:
    value = body.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str) or len(value) > limit:
        raise ValidationError(f"{key} must be text of at most {limit} characters", field=key)
    value = value.strip()
    if required and not value:
        raise ValidationError(f"{key} is required", field=key)
    return value


def _phone(body: dict[str, Any], required: bool) -> str:
    raw = _text(body, "phone", 40, required)
    if raw and normalize(raw) is None:
        raise ValidationError("phone is not a valid phone number", field="phone")
    return raw


def _viewer(user: SessionUser) -> call_queries.Viewer:
    return call_queries.Viewer(user.id, user.role, user.region)


async def _visible_ids(request: web.Request, user: SessionUser, ids: list[int]) -> set[int]:
    if not ids:
        return set()
    db = request.app[CONTEXT_KEY].db
    async with db.connect() as conn:
        rows = await conn.execute(
            select(Customer.id).where(Customer.id.in_(ids), customer_scope(user))
        )
        return {r.id for r in rows}


@require_roles(*DESK_ROLES)
async def duplicates(request: web.Request) -> web.Response:
    user, body = current_user(request), await _body(request)
    name = _text(body, "name", MAX_NAME)
    phone = _phone(body, required=False)
    if len(name) < 2 and not phone:
        return web.json_response({"duplicates": [], "hidden": 0})
    found = await find_duplicates(
        request.app[CONTEXT_KEY].db,
        name=name or phone,
        phones=[phone] if phone else [],
        address=_text(body, "address", 200) or None,
    )
    visible = await _visible_ids(request, user, [c.customer_id for c in found])
    shown = [c.as_dict() for c in found if c.customer_id in visible]
    return web.json_response({"duplicates": shown, "hidden": len(found) - len(shown)})


@require_roles(*DESK_ROLES)
async def quick_create(request: web.Request) -> web.Response:
    ctx, user, body = request.app[CONTEXT_KEY], current_user(request), await _body(request)
    values: dict[str, Any] = {"name": _text(body, "name", MAX_NAME, required=True)}
    for key, limit in (("city", 60), ("address", 200)):
        if text := _text(body, key, limit):
            values[key] = text
    kind = _text(body, "kind", 20)
    if kind:
        values["kind"] = kind
    # Owned by the agent who took the call, so it stays in their scope; the region is the
    # agent's own (an admin's quick-create has none until someone assigns it).
    values["owner_id"] = user.id
    if user.region:
        values["region"] = user.region
    allow = body.get("allow_duplicate") is True
    customer = await CustomerService(ctx.db, ctx.bus).create(
        values, [_phone(body, required=True)], user_id=user.id, allow_duplicate=allow
    )
    await audit(
        ctx,
        user,
        "customer_quick_created",
        "customer",
        str(customer.id),
        client_ip(request, ctx.settings),
        {"allow_duplicate": allow, "linkedid": _text(body, "linkedid", 64) or None},
    )
    return web.json_response(
        {"id": customer.id, "code": customer.code, "name": customer.name}, status=201
    )


@require_roles(*DESK_ROLES)
async def call_by_linkedid(request: web.Request) -> web.Response:
    user = current_user(request)
    linkedid = request.match_info["linkedid"][:40]
    by_linkedid = select(Call).where(Call.linkedid == linkedid).order_by(Call.id.desc())
    # While it rings the call has no agent yet; the agent it popped for may read it too.
    popped = select(ScreenPop.id).where(
        ScreenPop.linkedid == linkedid, ScreenPop.agent_id == user.id
    )
    async with request.app[CONTEXT_KEY].db.transaction() as session:
        call = (await session.scalars(call_queries.scoped(by_linkedid, _viewer(user)))).first()
        if call is None and (await session.scalars(popped)).first() is not None:
            call = (await session.scalars(by_linkedid)).first()
    if call is None:
        # Not written yet (the call log lags the pop by milliseconds) or not theirs.
        raise web.HTTPNotFound(reason=f"no call of yours with linkedid {linkedid}")
    return web.json_response(call_queries.call_row(call))


@require_roles(*DESK_ROLES)
async def link_customer(request: web.Request) -> web.Response:
    ctx, user, body = request.app[CONTEXT_KEY], current_user(request), await _body(request)
    call_id = int(request.match_info["call_id"])
    call = await call_queries.get_call(ctx.db, _viewer(user), call_id)
    customer_id = body.get("customer_id")
    if customer_id is not None:
        if isinstance(customer_id, bool) or not isinstance(customer_id, int):
            raise ValidationError("customer_id must be a number or null", field="customer_id")
        customer = await customer_for(ctx.db, request, user, customer_id)
        if not can_see_customer(user, customer):  # customer_for already refused; belt and braces
            await refuse(ctx.db, request, user, "customer", customer_id)
    async with ctx.db.transaction() as session:
        row = await session.get(Call, call.id)
        assert row is not None
        row.customer_id = customer_id
    await audit(
        ctx,
        user,
        "call_customer_linked",
        "call",
        str(call_id),
        client_ip(request, ctx.settings),
        {"customer_id": customer_id, "previous": call.customer_id},
    )
    return web.json_response({"call_id": call_id, "customer_id": customer_id})


async def _birthdays(ctx: AppContext, user: SessionUser) -> list[dict[str, Any]]:
    month = (datetime.now(UTC) + SHANGHAI).month
    query = (
        select(Contact.id, Contact.name, Contact.birthday, Customer.id.label("cid"), Customer.name)
        .join(Customer, Customer.id == Contact.customer_id)
        .where(
            Contact.deleted == false(),
            Customer.deleted == false(),
            Contact.birthday.is_not(None),
            extract("month", Contact.birthday) == month,
            customer_scope(user),
        )
        .order_by(extract("day", Contact.birthday), Contact.id)
        .limit(50)
    )
    async with ctx.db.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        {
            "contact_id": r[0],
            "contact": r[1],
            "birthday": r[2].isoformat()[5:] if r[2] else None,
            "customer_id": r[3],
            "customer": r[4],
        }
        for r in rows
    ]


@require_roles(*DESK_ROLES)
async def reminders(request: web.Request) -> web.Response:
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    now = datetime.now(UTC)
    callbacks = await call_queries.callback_list(ctx.db, _viewer(user))
    follow_ups = [
        f
        for f in await follow_up_list(ctx.db, user.id)
        if f["due_at"] is None or f["due_at"] <= (now + timedelta(days=1)).isoformat()
    ]
    return web.json_response(
        {
            "callbacks": [
                {
                    "id": c["id"],
                    "number": c["number"],
                    "customer_id": c["customer_id"],
                    "customer_name": c["customer_name"],
                    "entered_at": c["entered_at"],
                    "outcome": c["outcome"],
                }
                for c in callbacks[:50]
            ],
            "follow_ups": follow_ups[:50],
            "birthdays": await _birthdays(ctx, user),
            "sla": await sla_reminders.reminders_for(ctx.db, user),
        }
    )


def setup(app: web.Application, ctx: AppContext) -> None:
    app.router.add_post("/api/customers/duplicates", duplicates)
    app.router.add_post("/api/customers", quick_create)
    app.router.add_get("/api/calls/by-linkedid/{linkedid}", call_by_linkedid)
    app.router.add_post(r"/api/calls/{call_id:\d+}/customer", link_customer)
    app.router.add_get("/api/desktop/reminders", reminders)
    sla_reminders.subscribe(ctx.bus, ctx.db, app[HUB_KEY])
