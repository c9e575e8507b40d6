"""Following a customer merge in other packages' tables (calls, requests, recordings).

crm_core's merge moves its own rows (contacts, vehicles, phones, activities) and publishes
CustomersMerged. A package that keeps customer_id on its own rows subscribes and calls
`follow_merge` with its model: the rows move to the survivor and the moved ids are kept in a
ChangeRecord (entity "merge_move", entity_id = the merge's change id, action = the key), so
`follow_unmerge` on CustomersUnmerged puts back exactly those rows, not ones that were made
on the survivor since.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from crm_core import history
from crm_core.db import Database
from crm_core.events import CustomersMerged, CustomersUnmerged
from crm_core.models import ChangeRecord

MOVE_ENTITY = "merge_move"


async def follow_merge(db: Database, event: CustomersMerged, key: str, model: Any) -> list[int]:
    """Move `model` rows of the merged-away customer to the survivor; returns their ids."""
    async with db.transaction() as session:
        ids = list(
            (
                await session.scalars(select(model.id).where(model.customer_id == event.source_id))
            ).all()
        )
        if ids:
            await session.execute(
                update(model).where(model.id.in_(ids)).values(customer_id=event.target_id)
            )
        await history.record(
            session,
            MOVE_ENTITY,
            event.change_id,
            key[:20],
            None,
            {"ids": ids, "source_id": event.source_id, "target_id": event.target_id},
            None,
            note=f"{key} of customer #{event.source_id} moved to #{event.target_id}",
        )
    return ids


async def follow_unmerge(db: Database, event: CustomersUnmerged, key: str, model: Any) -> list[int]:
    """Put back the rows `follow_merge` moved for that merge, if still on the survivor."""
    if event.merge_change_id is None:
        return []
    async with db.transaction() as session:
        moved = (
            await session.scalars(
                select(ChangeRecord)
                .where(
                    ChangeRecord.entity == MOVE_ENTITY,
                    ChangeRecord.entity_id == event.merge_change_id,
                    ChangeRecord.action == key[:20],
                )
                .order_by(ChangeRecord.id.desc())
                .limit(1)
            )
        ).first()
        ids: list[int] = list((moved.after or {}).get("ids", [])) if moved else []
        if not ids:
            return []
        back = list(
            (
                await session.scalars(
                    select(model.id).where(model.id.in_(ids), model.customer_id == event.target_id)
                )
            ).all()
        )
        if back:
            await session.execute(
                update(model).where(model.id.in_(back)).values(customer_id=event.source_id)
            )
    return back
