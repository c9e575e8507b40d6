"""crm_core's optimistic concurrency (versions.py) and one-number edits (phone_edits.py)."""

from __future__ import annotations

import asyncio

import pytest

from crm_core import history, phone_edits, versions
from crm_core.customers import CustomerService
from crm_core.db import Database
from crm_core.errors import InvalidPhoneNumber
from crm_core.models import Customer


async def _token(db: Database, entity: str, entity_id: int) -> str:
    async with db.transaction() as session:
        token = await versions.current(session, entity, entity_id, db.settings)
    assert token is not None
    return token


async def test_an_update_with_an_old_version_is_refused_and_writes_nothing(db: Database) -> None:
    service = CustomerService(db)
    row = await service.create({"name": "合肥江淮运输有限公司"}, ["13905581234"])
    old = await _token(db, "customer", row.id)
    await service.update(row.id, {"city": "合肥"}, expected_version=f'W/"{old}"')
    new = await _token(db, "customer", row.id)
    assert new != old
    with pytest.raises(versions.StaleVersion) as refused:
        await service.update(row.id, {"city": "芜湖"}, expected_version=old)
    assert refused.value.status == 409
    assert refused.value.details["current_version"] == new
    assert refused.value.details["message_zh"].startswith("此客户已被 其他用户 于 ")
    async with db.transaction() as session:
        assert (await session.get(Customer, row.id)).city == "合肥"  # type: ignore[union-attr]
    # The token hides the numbers: it is keyed, not a plain hash of the snapshot.
    async with db.transaction() as session:
        state = await history.capture(session, "customer", row.id)
    other = db.settings.replace(sip_secret="another-deployment")
    assert versions.token_of(state, other) != new


async def test_phone_edits_keep_history_and_restore_brings_a_number_back(db: Database) -> None:
    row = await CustomerService(db).create({"name": "北京燕山物流有限公司"}, ["13801012345"])
    owner = await phone_edits.owner_of(db, "customer", row.id)
    added = await phone_edits.add_phone(db, owner, "0558-2123456", "office")
    assert added.e164 == "+865582123456" and added.kind == "landline"
    changed = await phone_edits.update_phone(
        db, added.id, "+86 139 0558 0000", expected_version=await _token(db, "customer", row.id)
    )
    assert changed.id == added.id and changed.e164 == "+8613905580000"
    with pytest.raises(InvalidPhoneNumber):
        await phone_edits.update_phone(db, added.id, "12")
    before_delete = (await history.list_history(db, "customer", row.id))[-1]
    await phone_edits.delete_phone(db, added.id)
    async with db.transaction() as session:
        state = await history.capture(session, "customer", row.id)
    assert [p["raw"] for p in state["phones"]] == ["13801012345"]  # type: ignore[index]
    await history.restore(db, "customer", row.id, change_id=before_delete.id)
    async with db.transaction() as session:
        state = await history.capture(session, "customer", row.id)
    assert [p["raw"] for p in state["phones"]] == ["13801012345", "+86 139 0558 0000"]  # type: ignore[index]
    conflicts = await phone_edits.phone_conflicts(db, row.id, ["13801012345"])
    assert conflicts == []  # its own number is no conflict
    other = await CustomerService(db).create({"name": "天津港物流"}, [], allow_duplicate=True)
    [hit] = await phone_edits.phone_conflicts(db, other.id, ["138-0101-2345"])
    assert hit.customer_id == row.id


async def test_two_simultaneous_edits_with_the_same_version_one_wins(db: Database) -> None:
    service = CustomerService(db)
    row = await service.create({"name": "合肥江淮运输有限公司"}, [])
    token = await _token(db, "customer", row.id)
    results = await asyncio.gather(
        service.update(row.id, {"city": "合肥"}, expected_version=token),
        service.update(row.id, {"city": "芜湖"}, expected_version=token),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["Customer", "StaleVersion"]
    won = next(r for r in results if isinstance(r, Customer))
    async with db.transaction() as session:
        assert (await session.get(Customer, row.id)).city == won.city  # type: ignore[union-attr]
