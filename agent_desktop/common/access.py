"""Who may see what: data scopes per role and object-level checks.

Scopes (docs/security.md):
- admin: every customer.
- supervisor and technician: customers of their region, plus customers they own.
- agent: customers they own, customers of their region, and customers not yet assigned to
  any region (a fresh quick-create from an unknown caller must stay reachable).
A customer outside the scope is reported as "not found" (404), so ids reveal nothing, and
the refusal is written to the audit log.
"""

from __future__ import annotations

from typing import NoReturn

from aiohttp import web
from sqlalchemy import ColumnElement, false, or_, true

from agent_desktop.common.audit import audit
from agent_desktop.common.ipaccess import client_ip
from agent_desktop.common.sessions import SessionUser
from crm_core.db import Database
from crm_core.errors import NotFound
from crm_core.models import Customer, Role
from crm_core.settings import Settings


def can_see_customer(user: SessionUser, customer: Customer) -> bool:
    if customer.deleted:
        return False
    if user.role == Role.ADMIN:
        return True
    if customer.owner_id is not None and customer.owner_id == user.id:
        return True
    if user.region is not None and customer.region == user.region:
        return True
    return user.role == Role.AGENT and customer.region is None


def customer_scope(user: SessionUser) -> ColumnElement[bool]:
    """The same rule as can_see_customer, as a WHERE clause on customers, for lists."""
    if user.role == Role.ADMIN:
        return true()
    clauses: list[ColumnElement[bool]] = [Customer.owner_id == user.id]
    if user.region is not None:
        clauses.append(Customer.region == user.region)
    if user.role == Role.AGENT:
        clauses.append(Customer.region.is_(None))
    return or_(false(), *clauses)


def sees_full_numbers(settings: Settings, user: SessionUser) -> bool:
    roles = {r.strip() for r in settings.phone_unmasked_roles.split(",") if r.strip()}
    return user.role in roles


def can_reveal_numbers(user: SessionUser) -> bool:
    # Anyone who may see the customer may reveal a number; the reveal is what gets audited.
    return user.role in (Role.AGENT, Role.SUPERVISOR, Role.TECHNICIAN, Role.ADMIN)


async def refuse(
    db: Database,
    request: web.Request,
    user: SessionUser | None,
    object_type: str,
    object_id: object,
) -> NoReturn:
    """Audit an object-level refusal and answer 404, as if the object did not exist."""
    await audit(
        db,
        user,
        "access_denied",
        object_type,
        str(object_id),
        client_ip(request, db.settings),
        {"path": request.path, "method": request.method},
    )
    raise NotFound(f"{object_type} {object_id} does not exist")


async def customer_for(
    db: Database, request: web.Request, user: SessionUser, customer_id: int
) -> Customer:
    """Load a customer the user may see, or audit and answer 404."""
    async with db.transaction() as session:
        customer = await session.get(Customer, customer_id)
    if customer is None or customer.deleted:
        raise NotFound(f"customer {customer_id} does not exist")
    if not can_see_customer(user, customer):
        await refuse(db, request, user, "customer", customer_id)
    return customer
