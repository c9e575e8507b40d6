"""Global search and the customer 360, as pages and as JSON, plus the audited number reveal."""

from __future__ import annotations

from aiohttp import web

from agent_desktop.common.access import can_reveal_numbers, customer_for, refuse, sees_full_numbers
from agent_desktop.common.audit import audit
from agent_desktop.common.customer_data import load_360, phone_of_customer, scoped_search
from agent_desktop.common.errors import Forbidden
from agent_desktop.common.guards import current_user
from agent_desktop.common.ipaccess import client_ip
from agent_desktop.common.labels import DISPOSITION_LABELS, TICKET_LABELS
from agent_desktop.common.pages import add_nav, render
from agent_desktop.context import CONTEXT_KEY, AppContext
from agent_desktop.customers.calls import customer_calls, customer_requests
from agent_desktop.customers.edit_pages import edit_context, version_map
from agent_desktop.customers.edit_support import etag
from crm_core.errors import HotlineError
from crm_core.phones import normalize
from cti import dispositions

EVERY_ROLE = ("agent", "supervisor", "technician", "admin")
DIRECTION_LABELS = {"inbound": "Inbound", "outbound": "Outbound"}
OUTCOME_LABELS = {
    "answered": "Answered",
    "missed": "Missed",
    "abandoned": "Abandoned",
    "transferred": "Transferred",
    "failed": "Call failed",
    "unknown": "Outcome unknown",
    "": "In progress",
}


def _id(request: web.Request, key: str) -> int:
    return int(request.match_info[key])  # the route pattern allows digits only


async def search_page(request: web.Request) -> web.Response:
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    query = request.query.get("q", "").strip()
    hits, error_id = [], None
    if query:
        try:
            hits = await scoped_search(ctx.db, user, query, sees_full_numbers(ctx.settings, user))
        except HotlineError as exc:
            error_id = exc.error_id
    return render(request, "customer_search.html", query=query, hits=hits, error_id=error_id)


async def search_api(request: web.Request) -> web.Response:
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    hits = await scoped_search(
        ctx.db, user, request.query.get("q", ""), sees_full_numbers(ctx.settings, user)
    )
    return web.json_response({"hits": [h.as_dict() for h in hits]})


async def customer_page(request: web.Request) -> web.Response:
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    customer = await customer_for(ctx.db, request, user, _id(request, "customer_id"))
    view = await load_360(ctx.db, customer, sees_full_numbers(ctx.settings, user))
    return render(
        request,
        "customer.html",
        c=view,
        calls=await customer_calls(ctx.db, customer, user),
        requests=await customer_requests(ctx.db, customer.id, user),
        can_link_calls=user.role in ("agent", "supervisor", "admin"),
        REQUEST_STATES=TICKET_LABELS["request_state"],
        REQUEST_CATEGORIES=TICKET_LABELS["category"],
        # The admin's labels (系统管理 → 处理结果), disabled codes too: old calls keep theirs.
        DISPOSITION_LABELS={**DISPOSITION_LABELS, **await dispositions.labels(ctx.db)},
        DIRECTION_LABELS=DIRECTION_LABELS,
        OUTCOME_LABELS=OUTCOME_LABELS,
        can_reveal=can_reveal_numbers(user)
        and any(p.masked for p in view.phones + [q for cv in view.contacts for q in cv.phones]),
        **(await edit_context(ctx.db, user, view)),  # issue #17 §2: edit forms, history
    )


async def customer_api(request: web.Request) -> web.Response:
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    customer = await customer_for(ctx.db, request, user, _id(request, "customer_id"))
    view = await load_360(ctx.db, customer, sees_full_numbers(ctx.settings, user))
    # issue #17 §2: the version tokens to send back when editing; the customer's as ETag.
    tokens = await version_map(ctx.db, view)
    token = tokens.get(f"customer:{customer.id}")
    data = {**view.as_dict(), "version": token, "versions": tokens}
    return web.json_response(data, headers=etag(token))


async def reveal_phone(request: web.Request) -> web.Response:
    """The full number of one phone, for someone who may see the customer; always audited."""
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    customer_id, phone_id = _id(request, "customer_id"), _id(request, "phone_id")
    await customer_for(ctx.db, request, user, customer_id)
    if not can_reveal_numbers(user):
        raise Forbidden("your role may not reveal phone numbers")
    row = await phone_of_customer(ctx.db, customer_id, phone_id)
    if row is None:
        await refuse(ctx.db, request, user, "phone", phone_id)
    ip = client_ip(request, ctx.settings)
    await audit(ctx, user, "phone_revealed", "phone", str(row.id), ip, {"customer_id": customer_id})
    phone = normalize(row.e164)
    return web.json_response(
        {"phone_id": row.id, "number": phone.display if phone else row.raw, "e164": row.e164}
    )


def setup(app: web.Application, ctx: AppContext) -> None:
    app.router.add_get("/customers/search", search_page)
    app.router.add_get(r"/customers/{customer_id:\d+}", customer_page)
    app.router.add_get("/api/customers/search", search_api)
    app.router.add_get(r"/api/customers/{customer_id:\d+}", customer_api)
    app.router.add_post(
        r"/api/customers/{customer_id:\d+}/phones/{phone_id:\d+}/reveal", reveal_phone
    )
    add_nav(app, "/customers/search", "Customer search", EVERY_ROLE)
