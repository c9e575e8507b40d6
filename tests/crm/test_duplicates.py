from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core import history
from crm_core.contacts import ContactService
from crm_core.customers import CustomerService
from crm_core.db import Database
from crm_core.duplicates import find_duplicates, merge, merged_sources, unmerge
from crm_core.errors import MergeRefused, PossibleDuplicate
from crm_core.events import CustomersMerged, EventBus
from crm_core.lookup import lookup_by_number
from crm_core.models import Activity, Contact, Vehicle
from crm_core.search import search
from crm_core.vehicles import VehicleService


async def test_check_before_create_names_the_lookalike(db: Database) -> None:
    service = CustomerService(db)
    first = await service.create(
        {"name": "合肥顺达物流有限公司", "address": "安徽省合肥市长江路100号"}, ["13905511234"]
    )
    with pytest.raises(PossibleDuplicate) as caught:
        await service.create({"name": "合肥顺达物流有限责任公司"}, ["0551-62000000"])
    candidates = caught.value.details["candidates"]
    assert candidates[0]["customer_id"] == first.id
    assert "name" in candidates[0]["reasons"][0]
    with pytest.raises(PossibleDuplicate, match="look like"):
        await service.create({"name": "完全不一样的名字"}, ["139 0551 1234"])
    third = await service.create({"name": "合肥顺达物流有限责任公司"}, allow_duplicate=True)
    assert third.id != first.id


async def test_unrelated_customers_are_not_duplicates(db: Database) -> None:
    await CustomerService(db).create({"name": "合肥顺达物流有限公司"}, ["13905511234"])
    assert await find_duplicates(db, name="芜湖金桥环卫有限公司", phones=["13800001111"]) == []


async def test_merge_moves_everything_and_can_be_undone(db: Database) -> None:
    service = CustomerService(db)
    target = await service.create({"name": "蚌埠鑫源冷链有限公司"}, ["13905521111"])
    source = await service.create({"name": "蚌埠鑫源冷链"}, ["13905522222"], allow_duplicate=True)
    contact = await ContactService(db).create({"customer_id": source.id, "name": "吴杰"})
    car = await VehicleService(db).create({"customer_id": source.id, "vin": "LJ11KA2C5N1234567"})
    async with db.transaction() as session:
        session.add(Activity(customer_id=source.id, kind="call", subject="报修"))
    bus, seen = EventBus(), []
    bus.subscribe(CustomersMerged, seen.append)

    change = await merge(db, source.id, target.id, bus=bus)
    assert seen == [CustomersMerged(source.id, target.id, change.id)]
    async with db.connect() as conn:
        owners = {
            (await conn.execute(select(m.customer_id).where(m.id == i))).scalar_one()
            for m, i in ((Contact, contact.id), (Vehicle, car.id), (Activity, 1))
        }
    assert owners == {target.id}
    assert [c.customer_id for c in await lookup_by_number(db, "13905522222")] == [target.id]
    assert source.id not in [h.customer_id for h in await search(db, "蚌埠鑫源")]
    assert await merged_sources(db, target.id) == [source.id]
    assert [e.action for e in await history.list_history(db, "customer", target.id)][
        -1
    ] == "merge_in"
    with pytest.raises(MergeRefused):
        await merge(db, source.id, target.id)

    await unmerge(db, change.id)
    assert [c.customer_id for c in await lookup_by_number(db, "13905522222")] == [source.id]
    async with db.connect() as conn:
        back = (
            await conn.execute(select(Vehicle.customer_id).where(Vehicle.id == car.id))
        ).scalar_one()
    assert back == source.id
    assert [e.action for e in await history.list_history(db, "customer", source.id)][-2:] == [
        "merge",
        "unmerge",
    ]
    with pytest.raises(MergeRefused):
        await unmerge(db, change.id)


async def test_merge_into_itself_is_refused(db: Database) -> None:
    row = await CustomerService(db).create({"name": "亳州大地运输有限公司"})
    with pytest.raises(MergeRefused):
        await merge(db, row.id, row.id)
