"""What the editing endpoints share: who may edit, version tokens, request bodies, the
duplicate-number refusal that respects data scope, and the mapping of edit errors to HTTP
(bad input is 400 with the field named; a stale version is 409 in the user's language)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ClassVar

from aiohttp import web
from sqlalchemy import select

from agent_desktop.common.access import can_see_customer, customer_for
from agent_desktop.common.pages import locale_of
from agent_desktop.common.sessions import SessionUser
from agent_desktop.context import CONTEXT_KEY
from crm_core import versions
from crm_core.db import Database
from crm_core.errors import HotlineError, NotFound, ValidationError
from crm_core.models import Contact, Customer, Vehicle
from crm_core.phone_edits import phone_conflicts
from crm_core.phones import normalize

EDIT_ROLES = ("agent", "supervisor", "admin")
MERGE_ROLES = ("supervisor", "admin")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class VersionRequired(HotlineError):
    status: ClassVar[int] = 428
    error_id: ClassVar[str] = "version_required"


class PhoneTaken(HotlineError):
    status: ClassVar[int] = 409
    error_id: ClassVar[str] = "phone_belongs_to_other_customer"


def edit_errors(handler: Handler) -> Handler:
    """Bad input → 400 naming the field; a conflict → 409 worded in the user's language."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ValidationError as exc:
            data = exc.to_dict()
            if "field" not in data and "fields" not in data and "raw" in data:
                data["field"] = "raw" if "/phones" in request.path else "phones"
            return web.json_response(data, status=400)
        except versions.StaleVersion as exc:
            data = exc.to_dict()
            data["message"] = data["message_zh"] if zh(request) else data["message_en"]
            return web.json_response(data, status=exc.status)

    return wrapped


def zh(request: web.Request) -> bool:
    return locale_of(request) == "zh_CN"


async def body_of(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise ValidationError("send a JSON object", field="body") from None
    if not isinstance(data, dict):
        raise ValidationError("send a JSON object", field="body")
    return data


def version_from(request: web.Request, body: dict[str, Any], *, required: bool) -> str | None:
    """The token the client edited: If-Match header, else the body's `version` (removed)."""
    token = versions.clean_token(request.headers.get("If-Match"))
    in_body = body.pop("version", None)
    if token is None and in_body is not None:
        if not isinstance(in_body, str):
            raise ValidationError("version must be the text token from the GET", field="version")
        token = versions.clean_token(in_body)
    if token is None and required:
        raise VersionRequired(
            "send the version you edited (If-Match header or a `version` field): "
            "read the record first, then save",
            message_zh="缺少版本号：请先刷新读取最新数据，再保存修改",
        )
    return token


def flag(body: dict[str, Any], key: str) -> bool:
    value = body.pop(key, False)
    if not isinstance(value, bool):
        raise ValidationError(f"{key} must be true or false", field=key)
    return value


def phones_from(body: dict[str, Any]) -> list[Any] | None:
    """The optional full list of numbers of a customer or contact ([str | {raw, label}])."""
    phones = body.pop("phones", None)
    if phones is None:
        return None
    if not isinstance(phones, list) or not all(
        isinstance(p, str) or (isinstance(p, dict) and isinstance(p.get("raw"), str))
        for p in phones
    ):
        raise ValidationError(
            'phones must be a list of numbers or {"raw", "label"}', field="phones"
        )
    return phones


def raws_of(phones: Iterable[Any]) -> list[str]:
    return [p if isinstance(p, str) else str(p["raw"]) for p in phones]


def etag(token: str | None) -> dict[str, str]:
    return {"ETag": f'"{token}"'} if token else {}


async def tokens(db: Database, entity: str, ids: Iterable[int]) -> dict[int, str]:
    """Current version tokens of several records of one kind."""
    out: dict[int, str] = {}
    async with db.transaction() as session:
        for entity_id in ids:
            token = await versions.current(session, entity, entity_id, db.settings)
            if token is not None:
                out[entity_id] = token
    return out


async def check_phones(
    request: web.Request, user: SessionUser, customer_id: int, raws: list[str], confirmed: bool
) -> None:
    """Refuse numbers another customer already has, unless confirmed. Names are given only
    for customers the user may see; the others are counted, never named."""
    if confirmed or not raws:
        return
    db = request.app[CONTEXT_KEY].db
    found = await phone_conflicts(db, customer_id, raws)
    if not found:
        return
    async with db.transaction() as session:
        rows = (
            await session.scalars(
                select(Customer).where(Customer.id.in_([c.customer_id for c in found]))
            )
        ).all()
    visible = [r for r in rows if can_see_customer(user, r)]
    hidden = len(rows) - len(visible)
    phone = normalize(raws[0], home_area_code=db.settings.home_area_code)
    shown = phone.display if phone and len(raws) == 1 else "、".join(raws)
    names_zh = "、".join(f"「{r.name}」（{r.code}）" for r in visible)
    names_en = ", ".join(f"{r.name} ({r.code})" for r in visible)
    if visible:
        zh_text = f"号码 {shown} 已属于客户{names_zh}"
        en_text = f"the number {shown} already belongs to customer {names_en}"
    else:
        zh_text = f"号码 {shown} 已属于另一位客户（您无权查看）"
        en_text = f"the number {shown} already belongs to another customer you may not see"
    zh_text += "。确认无误请选择“仍然保存”。"
    en_text += "; send confirm_duplicate=true to save it anyway"
    raise PhoneTaken(
        zh_text if zh(request) else en_text,
        message_zh=zh_text,
        message_en=en_text,
        customers=[{"id": r.id, "code": r.code, "name": r.name} for r in visible],
        hidden_customers=hidden,
    )


async def contact_for(
    db: Database, request: web.Request, user: SessionUser, contact_id: int
) -> tuple[Contact, Customer]:
    async with db.transaction() as session:
        contact = await session.get(Contact, contact_id)
    if contact is None or contact.deleted:
        raise NotFound(f"contact {contact_id} does not exist")
    return contact, await customer_for(db, request, user, contact.customer_id)


async def vehicle_for(
    db: Database, request: web.Request, user: SessionUser, vehicle_id: int
) -> tuple[Vehicle, Customer]:
    async with db.transaction() as session:
        vehicle = await session.get(Vehicle, vehicle_id)
    if vehicle is None or vehicle.deleted:
        raise NotFound(f"vehicle {vehicle_id} does not exist")
    return vehicle, await customer_for(db, request, user, vehicle.customer_id)


def match_id(request: web.Request, key: str) -> int:
    return int(request.match_info[key])  # the route patterns allow digits only
