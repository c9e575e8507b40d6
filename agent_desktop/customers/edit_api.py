"""Editing customers, contacts and vehicles from the desktop (issue #17 §2), as JSON.

Every write needs an editing role and a customer inside the user's data scope (404 outside
it, as for reads), carries the CSRF token (the auth middleware checks it), is one
transaction with a change-history row, and (for PATCH) the version token the client read:
without it 428, if the record changed meanwhile 409 and nothing is written.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select

from agent_desktop.common.access import customer_for, sees_full_numbers
from agent_desktop.common.customer_data import phone_view
from agent_desktop.common.errors import Forbidden
from agent_desktop.common.guards import current_user, require_roles
from agent_desktop.context import CONTEXT_KEY, AppContext
from agent_desktop.customers.edit_support import (
    EDIT_ROLES,
    body_of,
    check_phones,
    contact_for,
    edit_errors,
    etag,
    flag,
    match_id,
    phones_from,
    raws_of,
    tokens,
    vehicle_for,
    version_from,
)
from agent_desktop.customers.phone_api import PHONE_ROUTES
from crm_core import history
from crm_core.contacts import ContactService
from crm_core.customers import CustomerService
from crm_core.errors import ValidationError
from crm_core.models import Contact, PhoneNumber
from crm_core.phones import mask
from crm_core.records import snapshot
from crm_core.vehicles import VehicleService


def _no_move(body: dict[str, Any]) -> None:
    if "customer_id" in body:
        raise ValidationError(
            "customer_id cannot be changed here: merge the customers instead", field="customer_id"
        )


# Fields that move a customer to another region or owner, or bar it from calling: an agent
# could otherwise take a customer out of a colleague's scope or make it ring them first.
SUPERVISED_FIELDS = ("owner_id", "region", "blocked")


def _supervised(user_role: str, body: dict[str, Any], customer: Any) -> None:
    # A form sends every field: only a changed value counts ("" and None are the same).
    touched = [
        k
        for k in SUPERVISED_FIELDS
        if k in body and (body[k] or None) != (getattr(customer, k) or None)
    ]
    if touched and user_role not in ("supervisor", "admin"):
        raise Forbidden(f"only a supervisor or admin changes {', '.join(touched)}")


async def _reply(
    request: web.Request, entity: str, entity_id: int, status: int = 200
) -> web.Response:
    """The saved record and its new version. Numbers are left out (the 360 shows them,
    masked for roles that must not see them in full); so is a masked role's fax."""
    ctx = request.app[CONTEXT_KEY]
    async with ctx.db.transaction() as session:
        state = await history.capture(session, entity, entity_id)
    token = (await tokens(ctx.db, entity, [entity_id])).get(entity_id)
    state = {k: v for k, v in (state or {}).items() if k != "phones"}
    if state.get("fax") and not sees_full_numbers(ctx.settings, current_user(request)):
        state["fax"] = mask(state["fax"])
    return web.json_response({entity: state, "version": token}, status=status, headers=etag(token))


async def _contact_json(request: web.Request, contact: Contact) -> dict[str, Any]:
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    full = sees_full_numbers(ctx.settings, user)
    async with ctx.db.transaction() as session:
        phones = (
            await session.scalars(
                select(PhoneNumber)
                .where(PhoneNumber.contact_id == contact.id)
                .order_by(PhoneNumber.id)
            )
        ).all()
    return {**snapshot(contact), "phones": [phone_view(p, full).as_dict() for p in phones]}


# --- customers -----------------------------------------------------------------------


@edit_errors
@require_roles(*EDIT_ROLES)
async def patch_customer(request: web.Request) -> web.Response:
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    customer = await customer_for(ctx.db, request, user, match_id(request, "customer_id"))
    body = await body_of(request)
    _supervised(user.role, body, customer)
    expected = version_from(request, body, required=True)
    confirmed = flag(body, "confirm_duplicate")
    phones = phones_from(body)
    if phones is not None:
        await check_phones(request, user, customer.id, raws_of(phones), confirmed)
    await CustomerService(ctx.db, ctx.bus).update(
        customer.id, body, phones, user_id=user.id, expected_version=expected
    )
    return await _reply(request, "customer", customer.id)


# --- contacts ------------------------------------------------------------------------


@edit_errors
async def get_contact(request: web.Request) -> web.Response:
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    contact, _customer = await contact_for(ctx.db, request, user, match_id(request, "contact_id"))
    token = (await tokens(ctx.db, "contact", [contact.id])).get(contact.id)
    data = {"contact": await _contact_json(request, contact), "version": token}
    return web.json_response(data, headers=etag(token))


@edit_errors
@require_roles(*EDIT_ROLES)
async def add_contact(request: web.Request) -> web.Response:
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    customer = await customer_for(ctx.db, request, user, match_id(request, "customer_id"))
    body = await body_of(request)
    confirmed = flag(body, "confirm_duplicate")
    phones = phones_from(body) or []
    _no_move(body)
    await check_phones(request, user, customer.id, raws_of(phones), confirmed)
    row = await ContactService(ctx.db).create(
        {**body, "customer_id": customer.id}, phones, user_id=user.id
    )
    return await _reply(request, "contact", row.id, status=201)


@edit_errors
@require_roles(*EDIT_ROLES)
async def patch_contact(request: web.Request) -> web.Response:
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    contact, customer = await contact_for(ctx.db, request, user, match_id(request, "contact_id"))
    body = await body_of(request)
    expected = version_from(request, body, required=True)
    confirmed = flag(body, "confirm_duplicate")
    phones = phones_from(body)
    _no_move(body)
    if phones is not None:
        await check_phones(request, user, customer.id, raws_of(phones), confirmed)
    await ContactService(ctx.db).update(
        contact.id, body, phones, user_id=user.id, expected_version=expected
    )
    return await _reply(request, "contact", contact.id)


@edit_errors
@require_roles(*EDIT_ROLES)
async def delete_contact(request: web.Request) -> web.Response:
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    contact, _customer = await contact_for(ctx.db, request, user, match_id(request, "contact_id"))
    expected = version_from(request, await body_of(request), required=False)
    await ContactService(ctx.db).delete(contact.id, user_id=user.id, expected_version=expected)
    return web.json_response({"deleted": True, "contact_id": contact.id})


# --- vehicles ------------------------------------------------------------------------


@edit_errors
async def get_vehicle(request: web.Request) -> web.Response:
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    vehicle, _customer = await vehicle_for(ctx.db, request, user, match_id(request, "vehicle_id"))
    return await _reply(request, "vehicle", vehicle.id)


@edit_errors
@require_roles(*EDIT_ROLES)
async def add_vehicle(request: web.Request) -> web.Response:
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    customer = await customer_for(ctx.db, request, user, match_id(request, "customer_id"))
    body = await body_of(request)
    _no_move(body)
    row = await VehicleService(ctx.db).create({**body, "customer_id": customer.id}, user_id=user.id)
    return await _reply(request, "vehicle", row.id, status=201)


@edit_errors
@require_roles(*EDIT_ROLES)
async def patch_vehicle(request: web.Request) -> web.Response:
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    vehicle, _customer = await vehicle_for(ctx.db, request, user, match_id(request, "vehicle_id"))
    body = await body_of(request)
    expected = version_from(request, body, required=True)
    _no_move(body)
    await VehicleService(ctx.db).update(
        vehicle.id, body, user_id=user.id, expected_version=expected
    )
    return await _reply(request, "vehicle", vehicle.id)


@edit_errors
@require_roles(*EDIT_ROLES)
async def delete_vehicle(request: web.Request) -> web.Response:
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    vehicle, _customer = await vehicle_for(ctx.db, request, user, match_id(request, "vehicle_id"))
    expected = version_from(request, await body_of(request), required=False)
    await VehicleService(ctx.db).delete(vehicle.id, user_id=user.id, expected_version=expected)
    return web.json_response({"deleted": True, "vehicle_id": vehicle.id})


def setup(app: web.Application, ctx: AppContext) -> None:
    customer = r"/api/customers/{customer_id:\d+}"
    app.router.add_patch(customer, patch_customer)
    app.router.add_post(customer + "/contacts", add_contact)
    app.router.add_post(customer + "/vehicles", add_vehicle)
    contact, vehicle = r"/api/contacts/{contact_id:\d+}", r"/api/vehicles/{vehicle_id:\d+}"
    app.router.add_get(contact, get_contact)
    app.router.add_patch(contact, patch_contact)
    app.router.add_delete(contact, delete_contact)
    app.router.add_get(vehicle, get_vehicle)
    app.router.add_patch(vehicle, patch_vehicle)
    app.router.add_delete(vehicle, delete_vehicle)
    for method, path, handler in PHONE_ROUTES:
        app.router.add_route(method, path, handler)
