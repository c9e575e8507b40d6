from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from crm_core import history
from crm_core.contacts import ContactService
from crm_core.customers import CustomerService
from crm_core.db import Database
from crm_core.errors import HistoryError, NotFound, ValidationError
from crm_core.lookup import lookup_by_number
from crm_core.vehicles import VehicleService


async def test_every_change_is_recorded_with_before_and_after(db: Database) -> None:
    service = CustomerService(db)
    row = await service.create({"name": "滁州诚信运输有限公司", "city": "滁州"}, ["13855001234"])
    await service.update(row.id, {"city": "合肥", "vip_level": 2})
    await service.delete(row.id)
    entries = await history.list_history(db, "customer", row.id)
    assert [e.action for e in entries] == ["create", "update", "delete"]
    assert entries[1].changed == ("city", "vip_level")
    assert entries[2].changed == ("deleted",)


async def test_restore_to_an_earlier_change_brings_fields_and_phones_back(db: Database) -> None:
    service = CustomerService(db)
    row = await service.create({"name": "黄山安泰环卫有限公司", "city": "黄山"}, ["13955901234"])
    first = (await history.list_history(db, "customer", row.id))[0]
    await service.update(row.id, {"name": "黄山新名字有限公司", "city": "合肥"}, ["13800000000"])
    restored = await history.restore(db, "customer", row.id, change_id=first.id)
    again = await service.get(row.id)
    assert (again.name, again.city) == ("黄山安泰环卫有限公司", "黄山")
    assert again.name_initials == "hsathwyxgs"
    assert [c.customer_id for c in await lookup_by_number(db, "13955901234")] == [row.id]
    assert await lookup_by_number(db, "13800000000") == []
    assert restored.action == "restore"
    assert f"#{first.id}" in (restored.note or "")
    assert [e.action for e in await history.list_history(db, "customer", row.id)][-1] == "restore"


async def test_restore_undeletes_by_time(db: Database) -> None:
    service = CustomerService(db)
    row = await service.create({"name": "六安永昌建设有限公司"})
    await asyncio.sleep(0.01)
    moment = datetime.now(UTC)
    await asyncio.sleep(0.01)
    await service.delete(row.id)
    with pytest.raises(NotFound):
        await service.get(row.id)
    await history.restore(db, "customer", row.id, at=moment)
    assert (await service.get(row.id)).name == "六安永昌建设有限公司"


async def test_contact_and_vehicle_history(db: Database) -> None:
    owner = await CustomerService(db).create({"name": "淮南宏图物流有限公司"})
    contact = await ContactService(db).create(
        {"customer_id": owner.id, "name": "周敏"}, ["13955411111"]
    )
    await ContactService(db).update(contact.id, {"title": "车队长"}, ["13955422222"])
    first = (await history.list_history(db, "contact", contact.id))[0]
    await history.restore(db, "contact", contact.id, change_id=first.id)
    assert [c.contact_id for c in await lookup_by_number(db, "13955411111")] == [contact.id]
    car = await VehicleService(db).create(
        {"customer_id": owner.id, "vin": "LJ11KA2C5N1234567", "plate": "皖D12345"}
    )
    await VehicleService(db).update(car.id, {"plate": "皖D99999"})
    created = (await history.list_history(db, "vehicle", car.id))[0]
    await history.restore(db, "vehicle", car.id, change_id=created.id)
    assert [e.action for e in await history.list_history(db, "vehicle", car.id)] == [
        "create",
        "update",
        "restore",
    ]


async def test_restore_refuses_nonsense(db: Database) -> None:
    row = await CustomerService(db).create({"name": "马鞍山通力工程有限公司"})
    with pytest.raises(HistoryError):
        await history.restore(db, "customer", row.id, change_id=99999)
    with pytest.raises(HistoryError):
        await history.restore(db, "customer", row.id, at=datetime(2000, 1, 1, tzinfo=UTC))
    with pytest.raises(ValidationError):
        await history.restore(db, "customer", row.id)
    with pytest.raises(ValidationError):
        await history.restore(db, "invoice", row.id, change_id=1)
