"""What the customer 360 needs for editing (issue #17 §2): whether the user may edit or
merge, the version token of every record shown, the combined change history with its
restore buttons, and the merges that can be undone from this page."""

from __future__ import annotations

from typing import Any

from agent_desktop.common.customer_data import Customer360
from agent_desktop.common.sessions import SessionUser
from agent_desktop.customers.edit_support import EDIT_ROLES, MERGE_ROLES, tokens
from agent_desktop.customers.history_view import (
    customer_history,
    latest_merge_of,
    merged_into_this,
)
from crm_core.db import Database

ENTITY_LABELS = {"customer": "Customer", "contact": "Contact", "vehicle": "Vehicle"}


async def version_map(db: Database, view: Customer360) -> dict[str, str]:
    """Version tokens keyed "customer:5", "contact:7", "vehicle:9", for the page's forms."""
    out = {
        f"customer:{i}": t for i, t in (await tokens(db, "customer", [view.customer.id])).items()
    }
    contacts = await tokens(db, "contact", [c.contact.id for c in view.contacts])
    vehicles = await tokens(db, "vehicle", [v.id for v in view.vehicles])
    out.update({f"contact:{i}": t for i, t in contacts.items()})
    out.update({f"vehicle:{i}": t for i, t in vehicles.items()})
    return out


async def edit_context(db: Database, user: SessionUser, view: Customer360) -> dict[str, Any]:
    customer = view.customer
    can_edit = user.role in EDIT_ROLES and customer.merged_into_id is None
    can_merge = user.role in MERGE_ROLES
    return {
        "can_edit": can_edit,
        "can_merge": can_merge and customer.merged_into_id is None,
        "can_unmerge": can_merge and await latest_merge_of(db, customer.id) is not None,
        "merged_sources": await merged_into_this(db, customer.id) if can_merge else [],
        "versions": await version_map(db, view) if can_edit else {},
        "history_rows": await customer_history(db, customer.id),
        "ENTITY_LABELS": ENTITY_LABELS,
    }
