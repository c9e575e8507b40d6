"""Duplicate customers: a fuzzy check before create, and a recorded, reversible merge.

Candidates are gathered through indexes (same number, same name initials), then scored with
rapidfuzz on name, phone and address, so the check stays fast on a million customers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rapidfuzz import fuzz
from sqlalchemy import false, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import history
from crm_core.db import Database
from crm_core.errors import MergeRefused, NotFound
from crm_core.events import CustomersMerged, CustomersUnmerged, EventBus
from crm_core.lookup import prefix_bounds
from crm_core.models import Activity, ChangeRecord, Contact, Customer, PhoneNumber, Vehicle
from crm_core.phones import normalize
from crm_core.pinyin import initials

THRESHOLD = 80.0
NAME_CANDIDATES = 200
INITIALS_PREFIX = 4


@dataclass(frozen=True)
class DuplicateCandidate:
    customer_id: int
    code: str
    name: str
    score: float
    reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _score(
    name: str, address: str | None, row: Customer, phone_hit: bool
) -> tuple[float, tuple[str, ...]]:
    reasons: list[str] = []
    name_score = fuzz.ratio(name, row.name)
    if name_score >= THRESHOLD:
        reasons.append(f"name {name_score:.0f}% alike")
    address_score = 0.0
    if address and row.address:
        address_score = fuzz.token_set_ratio(address, row.address)
        if address_score >= THRESHOLD:
            reasons.append(f"address {address_score:.0f}% alike")
    if phone_hit:
        reasons.append("same phone number")
    # A shared number is the strongest sign; a similar name counts more with the same address.
    score = max(100.0 if phone_hit else 0.0, name_score * 0.8 + address_score * 0.2, name_score)
    if name_score >= THRESHOLD and address_score >= THRESHOLD:
        score = max(score, (name_score + address_score) / 2 + 5)
    return min(score, 100.0), tuple(reasons)


async def find_duplicates(
    db: Database,
    *,
    name: str,
    phones: Sequence[str] = (),
    address: str | None = None,
    exclude_id: int | None = None,
) -> list[DuplicateCandidate]:
    numbers = [
        p.e164 for raw in phones if (p := normalize(raw, home_area_code=db.settings.home_area_code))
    ]
    async with db.transaction() as session:
        phone_owner_ids: set[int] = set()
        if numbers:
            phone_owner_ids = set(
                (
                    await session.scalars(
                        select(PhoneNumber.customer_id).where(PhoneNumber.e164.in_(numbers))
                    )
                ).all()
            )
        # Names that start alike (city + brand for firms, the whole name for people) are the
        # candidates; rapidfuzz then decides. The prefix keeps this an index range query.
        low, high = prefix_bounds(initials(name)[:INITIALS_PREFIX] or "?")
        by_name = (
            select(Customer)
            .where(Customer.name_initials >= low, Customer.name_initials < high)
            .limit(NAME_CANDIDATES)
        )
        rows = {c.id: c for c in (await session.scalars(by_name)).all()}
        if phone_owner_ids:
            more = select(Customer).where(Customer.id.in_(phone_owner_ids))
            rows.update({c.id: c for c in (await session.scalars(more)).all()})
    found = []
    for row in rows.values():
        if row.id == exclude_id or row.deleted or row.merged_into_id is not None:
            continue
        score, reasons = _score(name, address, row, row.id in phone_owner_ids)
        if score >= THRESHOLD:
            found.append(DuplicateCandidate(row.id, row.code, row.name, round(score, 1), reasons))
    return sorted(found, key=lambda c: (-c.score, c.customer_id))


MOVED: dict[str, tuple[Any, Any]] = {
    "contacts": (Contact, Contact.customer_id),
    "vehicles": (Vehicle, Vehicle.customer_id),
    "activities": (Activity, Activity.customer_id),
    "phones": (PhoneNumber, PhoneNumber.customer_id),
}


async def _live_customer(session: AsyncSession, customer_id: int) -> Customer:
    row = await session.get(Customer, customer_id)
    if row is None or row.deleted:
        raise NotFound(f"customer {customer_id} does not exist")
    return row


async def merge(
    db: Database,
    source_id: int,
    target_id: int,
    *,
    user_id: int | None = None,
    bus: EventBus | None = None,
) -> ChangeRecord:
    """Move everything of `source` onto `target`; source stays as a tombstone pointing there."""
    if source_id == target_id:
        raise MergeRefused("a customer cannot be merged into itself")
    async with db.transaction() as session:
        source = await _live_customer(session, source_id)
        target = await _live_customer(session, target_id)
        for row in (source, target):
            if row.merged_into_id is not None:
                raise MergeRefused(
                    f"customer {row.id} was already merged into {row.merged_into_id}"
                )
        moved: dict[str, list[int]] = {}
        for key, (model, column) in MOVED.items():
            ids = list((await session.scalars(select(model.id).where(column == source_id))).all())
            if ids:
                await session.execute(
                    update(model).where(model.id.in_(ids)).values(customer_id=target_id)
                )
            moved[key] = ids
        before = await history.capture(session, "customer", source_id)
        source.merged_into_id = target_id
        await session.flush()
        change = await history.record(
            session,
            "customer",
            source_id,
            "merge",
            before,
            {**(await history.capture(session, "customer", source_id) or {}), "moved": moved},
            user_id,
            note=f"merged into customer {target.code} (#{target_id})",
        )
        await history.record(
            session,
            "customer",
            target_id,
            "merge_in",
            None,
            {"moved": moved},
            user_id,
            note=f"absorbed customer {source.code} (#{source_id})",
        )
    if bus:
        await bus.publish(CustomersMerged(source_id, target_id, change.id))
    return change


async def unmerge(
    db: Database,
    merge_change_id: int,
    *,
    user_id: int | None = None,
    bus: EventBus | None = None,
) -> ChangeRecord:
    """Reverse a merge: the rows that moved go back, unless since deleted or moved again."""
    async with db.transaction() as session:
        change = await session.get(ChangeRecord, merge_change_id)
        if change is None or change.action != "merge" or change.after is None:
            raise NotFound(f"change #{merge_change_id} is not a merge")
        source = await session.get(Customer, change.entity_id)
        if source is None or source.merged_into_id is None:
            raise MergeRefused(f"customer {change.entity_id} is not merged any more")
        target_id = source.merged_into_id
        before = await history.capture(session, "customer", source.id)
        for key, ids in change.after["moved"].items():
            model, column = MOVED[key]
            if ids:
                await session.execute(
                    update(model)
                    .where(model.id.in_(ids), column == target_id)
                    .values(customer_id=source.id)
                )
        source.merged_into_id = None
        await session.flush()
        after = await history.capture(session, "customer", source.id)
        record = await history.record(
            session,
            "customer",
            source.id,
            "unmerge",
            before,
            after,
            user_id,
            note=f"undid merge #{merge_change_id}",
        )
    if bus:
        await bus.publish(CustomersUnmerged(source.id, target_id, record.id, merge_change_id))
    return record


async def merged_sources(db: Database, target_id: int) -> list[int]:
    """Customers merged into `target`, so its history view can include theirs."""
    async with db.transaction() as session:
        query = select(Customer.id).where(
            Customer.merged_into_id == target_id, Customer.deleted == false()
        )
        return list((await session.scalars(query)).all())
