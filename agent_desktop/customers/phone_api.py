"""One phone number at a time, for a customer or one of its contacts (issue #17 §2).

A number's version is its owner's (the customer's, or the contact's): PATCH needs it, POST
and DELETE check it when sent. The reply shows the saved number normalised; in full only
when this request typed it (the user knows it) or the role sees full numbers.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agent_desktop.common.access import customer_for, sees_full_numbers
from agent_desktop.common.guards import current_user, require_roles
from agent_desktop.context import CONTEXT_KEY
from agent_desktop.customers.edit_support import (
    EDIT_ROLES,
    Handler,
    body_of,
    check_phones,
    contact_for,
    edit_errors,
    etag,
    flag,
    match_id,
    tokens,
    version_from,
)
from crm_core import phone_edits
from crm_core.errors import ValidationError
from crm_core.models import PhoneNumber
from crm_core.phones import mask, normalize


def _text(body: dict[str, Any], key: str, *, required: bool) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise ValidationError(f"{key} is required: the phone number as typed", field=key)
    return value


async def _reply(
    request: web.Request, row: PhoneNumber, owner: phone_edits.PhoneOwner, typed: bool, status: int
) -> web.Response:
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    phone = normalize(row.e164)
    display = phone.display if phone else row.raw
    full = typed or sees_full_numbers(ctx.settings, user)
    token = (await tokens(ctx.db, owner.entity, [owner.entity_id])).get(owner.entity_id)
    data = {
        "phone": {
            "id": row.id,
            "label": row.label,
            "kind": row.kind,
            "number": display if full else mask(row.e164),
            "masked": not full,
        },
        "owner": {"entity": owner.entity, "id": owner.entity_id},
        "version": token,
    }
    return web.json_response(data, status=status, headers=etag(token))


async def _owner(request: web.Request, entity: str, entity_id: int) -> phone_edits.PhoneOwner:
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    if entity == "contact":
        await contact_for(ctx.db, request, user, entity_id)
    owner = await phone_edits.owner_of(ctx.db, entity, entity_id)
    await customer_for(ctx.db, request, user, owner.customer_id)
    return owner


def _adder(entity: str, key: str) -> Handler:
    @edit_errors
    @require_roles(*EDIT_ROLES)
    async def add_phone(request: web.Request) -> web.Response:
        ctx, user = request.app[CONTEXT_KEY], current_user(request)
        owner = await _owner(request, entity, match_id(request, key))
        body = await body_of(request)
        expected = version_from(request, body, required=False)
        confirmed = flag(body, "confirm_duplicate")
        raw = _text(body, "raw", required=True) or ""
        await check_phones(request, user, owner.customer_id, [raw], confirmed)
        row = await phone_edits.add_phone(
            ctx.db, owner, raw, body.get("label"), user_id=user.id, expected_version=expected
        )
        return await _reply(request, row, owner, typed=True, status=201)

    return add_phone


@edit_errors
@require_roles(*EDIT_ROLES)
async def patch_phone(request: web.Request) -> web.Response:
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    owner = await phone_edits.owner_of_phone(ctx.db, match_id(request, "phone_id"))
    owner = await _owner(request, owner.entity, owner.entity_id)
    body = await body_of(request)
    expected = version_from(request, body, required=True)
    confirmed = flag(body, "confirm_duplicate")
    raw = _text(body, "raw", required=False)
    if raw is not None:
        await check_phones(request, user, owner.customer_id, [raw], confirmed)
    row = await phone_edits.update_phone(
        ctx.db,
        match_id(request, "phone_id"),
        raw,
        body.get("label"),
        user_id=user.id,
        expected_version=expected,
    )
    return await _reply(request, row, owner, typed=raw is not None, status=200)


@edit_errors
@require_roles(*EDIT_ROLES)
async def delete_phone(request: web.Request) -> web.Response:
    ctx, user = request.app[CONTEXT_KEY], current_user(request)
    phone_id = match_id(request, "phone_id")
    owner = await phone_edits.owner_of_phone(ctx.db, phone_id)
    owner = await _owner(request, owner.entity, owner.entity_id)
    expected = version_from(request, await body_of(request), required=False)
    await phone_edits.delete_phone(ctx.db, phone_id, user_id=user.id, expected_version=expected)
    token = (await tokens(ctx.db, owner.entity, [owner.entity_id])).get(owner.entity_id)
    return web.json_response(
        {"deleted": True, "phone_id": phone_id, "version": token}, headers=etag(token)
    )


PHONE_ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", r"/api/customers/{customer_id:\d+}/phones", _adder("customer", "customer_id")),
    ("POST", r"/api/contacts/{contact_id:\d+}/phones", _adder("contact", "contact_id")),
    ("PATCH", r"/api/phones/{phone_id:\d+}", patch_phone),
    ("DELETE", r"/api/phones/{phone_id:\d+}", delete_phone),
]
