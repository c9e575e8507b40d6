from __future__ import annotations

import pytest

from crm_core.contacts import ContactService
from crm_core.customers import CustomerService
from crm_core.db import Database
from crm_core.errors import ValidationError
from crm_core.lookup import lookup_by_number
from crm_core.search import search
from crm_core.vehicles import VehicleService


@pytest.fixture
async def people(db: Database) -> dict[str, int]:
    customers = CustomerService(db)
    zhang = await customers.create(
        {"name": "张三", "code": "C0000001", "vip_level": 3}, ["13905581234", "0558-2123456"]
    )
    firm = await customers.create(
        {"name": "安徽江淮汽车集团有限公司", "code": "C0000002"}, ["0551-62345678"]
    )
    await ContactService(db).create({"customer_id": firm.id, "name": "李四"}, ["+86 139 0558 1234"])
    other = await customers.create(
        {"name": "亳州天成物流有限公司", "code": "C0000003"},
        ["0551-72123456"],
        allow_duplicate=True,
    )
    await VehicleService(db).create(
        {"customer_id": firm.id, "vin": "LJ11KA2C5N1234567", "plate": "皖A8K123"}
    )
    return {"zhang": zhang.id, "firm": firm.id, "other": other.id}


async def test_lookup_returns_every_match_ranked(db: Database, people: dict[str, int]) -> None:
    found = await lookup_by_number(db, "008613905581234")
    assert [(c.customer_id, c.match) for c in found] == [
        (people["zhang"], "exact"),
        (people["firm"], "exact"),
    ]
    assert found[0].contact_id is None and found[1].contact_name == "李四"


async def test_exact_beats_suffix(db: Database, people: dict[str, int]) -> None:
    # A number sharing the last eight digits under another area code is only a "suffix"
    # candidate; 0558-2123456 shares just seven digits and is not a candidate at all.
    found = await lookup_by_number(db, "0551-72123456")
    assert [(c.customer_id, c.match) for c in found] == [(people["other"], "exact")]
    found = await lookup_by_number(db, "021-72123456")
    assert [(c.customer_id, c.match) for c in found] == [(people["other"], "suffix")]


@pytest.mark.parametrize("caller", [None, "", "anonymous", "Anonymous", "<unknown>", "@@@", "0"])
async def test_withheld_callers_find_nobody(
    db: Database, people: dict[str, int], caller: str
) -> None:
    assert await lookup_by_number(db, caller) == []


@pytest.mark.parametrize(
    ("query", "who", "matched_on"),
    [
        ("张", "zhang", "name"),
        ("江淮", "firm", "name"),
        ("zs", "zhang", "initials"),
        ("zhangsan", "zhang", "pinyin"),
        ("ZhangS", "zhang", "pinyin"),
        ("ahjhqc", "firm", "initials"),
        ("李四", "firm", "contact"),
        ("ls", "firm", "contact"),
        ("13905581234", "zhang", "phone"),
        ("1234", "zhang", "phone"),
        ("62345678", "firm", "phone"),
        ("C0000002", "firm", "code"),
        ("c00000", "zhang", "code"),
        ("234567", "firm", "vin"),
        ("LJ11KA2C5N1234567", "firm", "vin"),
        ("皖A8K", "firm", "plate"),
        ("皖a8k123", "firm", "plate"),
    ],
)
async def test_search(
    db: Database, people: dict[str, int], query: str, who: str, matched_on: str
) -> None:
    hits = await search(db, query)
    assert (people[who], matched_on) in [(h.customer_id, h.matched_on) for h in hits]


async def test_search_finds_nothing_for_strangers(db: Database, people: dict[str, int]) -> None:
    assert await search(db, "王麻子") == []
    assert await search(db, "99999999") == []


@pytest.mark.parametrize("query", ["", "   ", "x" * 65])
async def test_search_rejects_empty_or_huge_queries(db: Database, query: str) -> None:
    with pytest.raises(ValidationError):
        await search(db, query)


async def test_deleted_customers_are_not_found(db: Database, people: dict[str, int]) -> None:
    await CustomerService(db).delete(people["zhang"])
    assert [c.customer_id for c in await lookup_by_number(db, "13905581234")] == [people["firm"]]
    assert people["zhang"] not in [h.customer_id for h in await search(db, "张三")]
