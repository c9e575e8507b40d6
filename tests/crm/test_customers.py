from __future__ import annotations

import pytest
from sqlalchemy import func, select

from crm_core.contacts import ContactService
from crm_core.customers import CustomerService
from crm_core.db import Database
from crm_core.errors import (
    DuplicateCode,
    FieldTooLong,
    InvalidPhoneNumber,
    NotFound,
    RequiredFieldMissing,
    ValidationError,
)
from crm_core.models import ChangeRecord, Customer, PhoneNumber
from crm_core.vehicles import VehicleService


async def count(db: Database, model: type) -> int:
    async with db.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(model))).scalar_one())


async def test_create_customer_stores_canonical_phones_and_pinyin(db: Database) -> None:
    row = await CustomerService(db).create(
        {"name": "阜阳顺达物流有限公司", "code": "C1", "city": "阜阳", "vip_level": 2},
        ["139-0558-1234", {"raw": "2123456", "label": "office"}],
    )
    async with db.connect() as conn:
        phones = (
            await conn.execute(
                select(PhoneNumber.e164, PhoneNumber.label)
                .where(PhoneNumber.customer_id == row.id)
                .order_by(PhoneNumber.id)
            )
        ).all()
    assert [tuple(p) for p in phones] == [("+8613905581234", "phone"), ("+865582123456", "office")]
    assert row.name_initials == "fysdwlyxgs"
    assert row.name_pinyin.startswith("fuyangshunda")


@pytest.mark.parametrize(
    ("values", "phones", "error"),
    [
        ({"name": ""}, [], RequiredFieldMissing),
        ({"name": "x" * 201}, [], FieldTooLong),
        ({"name": "好", "colour": "red"}, [], ValidationError),
        ({"name": "好", "vip_level": 12}, [], ValidationError),
        ({"name": "好", "kind": "partner"}, [], ValidationError),
        ({"name": "好", "owner_id": 999}, [], ValidationError),
        ({"name": "好"}, ["not a number"], InvalidPhoneNumber),
        ({"name": "好"}, ["123"], InvalidPhoneNumber),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_written(
    db: Database, values: dict[str, object], phones: list[str], error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        await CustomerService(db).create(values, phones)
    assert caught.value.error_id  # type: ignore[attr-defined]
    assert await count(db, Customer) == 0
    assert await count(db, PhoneNumber) == 0
    assert await count(db, ChangeRecord) == 0


async def test_duplicate_code_is_a_clear_error(db: Database) -> None:
    service = CustomerService(db)
    await service.create({"name": "甲公司", "code": "C100"})
    with pytest.raises(DuplicateCode, match="C100"):
        await service.create({"name": "完全不同的乙单位", "code": "C100"})
    assert await count(db, Customer) == 1


async def test_update_and_delete_unknown_customer(db: Database) -> None:
    with pytest.raises(NotFound):
        await CustomerService(db).update(424242, {"name": "无"})
    with pytest.raises(NotFound):
        await CustomerService(db).delete(424242)


async def test_failed_update_leaves_record_untouched(db: Database) -> None:
    service = CustomerService(db)
    row = await service.create({"name": "合肥宏远环卫有限公司"}, ["13812345678"])
    with pytest.raises(InvalidPhoneNumber):
        await service.update(row.id, {"name": "改名"}, ["garbage"])
    again = await service.get(row.id)
    assert again.name == "合肥宏远环卫有限公司"
    assert await count(db, PhoneNumber) == 1


async def test_contacts_and_vehicles(db: Database) -> None:
    dealer = await CustomerService(db).create({"name": "合肥江淮专用车经销商", "kind": "dealer"})
    owner = await CustomerService(db).create({"name": "宿州万里运输有限公司"})
    boss = await ContactService(db).create(
        {"customer_id": owner.id, "name": "曾伟", "title": "总经理", "birthday": "1975-03-08"},
        ["13955712345"],
    )
    assert boss.name_pinyin == "zengwei"
    driver = await ContactService(db).create(
        {"customer_id": owner.id, "name": "李强", "superior_id": boss.id}
    )
    assert driver.superior_id == boss.id
    with pytest.raises(ValidationError, match="superior"):
        await ContactService(db).create(
            {"customer_id": dealer.id, "name": "王五", "superior_id": boss.id}
        )
    vehicles = VehicleService(db)
    car = await vehicles.create(
        {
            "customer_id": owner.id,
            "vin": "lj11ka2c5n1234567",
            "plate": "皖L 12345",
            "dealer_id": dealer.id,
        }
    )
    assert (car.vin, car.vin_tail, car.plate) == ("LJ11KA2C5N1234567", "234567", "皖L12345")
    with pytest.raises(DuplicateCode):
        await vehicles.create({"customer_id": owner.id, "vin": "LJ11KA2C5N1234567"})
    with pytest.raises(ValidationError, match="VIN"):
        await vehicles.create({"customer_id": owner.id, "vin": "LJ11KA2C5N12345IO"})
    with pytest.raises(ValidationError, match="dealer"):
        await vehicles.create(
            {"customer_id": owner.id, "vin": "LJ11KA2C5N7654321", "dealer_id": owner.id}
        )
