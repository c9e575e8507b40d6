"""Importing customers into a real database: counts, what is stored (the same keys as the
app's own create), duplicates, bad rows and their report, idempotence, dry run."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from import_files import bad_check_digit, vin, write_csv, write_xlsx
from sqlalchemy import func, select

from crm_core.customers import CustomerService
from crm_core.db import Database
from crm_core.history import list_history, restore
from crm_core.importing import ImportOptions, run_import
from crm_core.models import ChangeRecord, Customer, PhoneNumber, Vehicle
from crm_core.search import search

GOOD = [
    ["", "合肥江淮运输有限公司", "华东", "合肥", "0551-62123456", "13905581234", vin(1), "皖A12345",
     "HFC1041", "2021/3/4"],
    ["C100", "张三", "华东", "宿州", "", "+86 138-0557-1234", "", "", "", ""],
]  # fmt: skip
BAD = [
    ["", "", "华东", "合肥", "", "13905589999", "", "", "", ""],  # empty name
    ["", "李四", "华东", "合肥", "", "12345", "", "", "", ""],  # unparseable phone
    ["", "王五", "华东", "合肥", "", "13705581234", bad_check_digit(7), "", "", ""],  # check digit
    ["", "赵六", "华东", "合肥", "", "13605581234", "LJ1PCA2B0RA00", "", "", ""],  # VIN too short
]
DUPLICATE = ["", "北京某某物流公司", "华北", "北京", "", "13801012345", "", "", "", ""]


async def count(db: Database, model: Any) -> int:
    async with db.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(model))).scalar_one())


def report_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
async def existing(db: Database) -> Customer:
    return await CustomerService(db).create({"name": "北京燕山物流有限公司"}, ["13801012345"])


@pytest.mark.parametrize("fmt", ["utf-8", "utf-8-sig", "gbk", "xlsx"])
async def test_import_counts_report_and_stored_rows(
    db: Database, existing: Customer, tmp_path: Path, fmt: str
) -> None:
    rows = [*GOOD, *BAD, DUPLICATE]
    path = (
        write_xlsx(tmp_path / "c.xlsx", rows)
        if fmt == "xlsx"
        else write_csv(tmp_path / "c.csv", rows, encoding=fmt)
    )
    report_path = tmp_path / "errors.csv"
    report = await run_import(db, path, ImportOptions("customers", report_path=report_path))
    assert dict(report.counts) == {"new": 2, "invalid": 4, "duplicate": 1}
    problems = report_rows(report_path)
    assert [(p["行号 row"], p["列 column"], p["结果 outcome"]) for p in problems] == [
        ("4", "客户名称", "invalid"),
        ("5", "手机", "invalid"),
        ("6", "车架号", "invalid"),
        ("7", "车架号", "invalid"),
        ("8", "手机", "duplicate"),
    ]
    assert "too few digits" in problems[1]["原因 reason"]
    assert "check digit" in problems[2]["原因 reason"]
    assert "北京燕山物流有限公司" in problems[4]["原因 reason"]
    assert await count(db, Customer) == 3 and await count(db, Vehicle) == 1
    # Found the way agents search: pinyin, initials, phone tail, VIN tail, plate.
    for query in ("hefeijianghuai", "hfjhysyxgs", "1234", vin(1)[-6:], "皖A12345", "zhangsan"):
        assert any(h.name in ("合肥江淮运输有限公司", "张三") for h in await search(db, query)), (
            query
        )


async def test_imported_rows_match_app_created_ones(db: Database, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "c.csv", GOOD[:1])
    await run_import(db, path, ImportOptions("customers"))
    made = await CustomerService(db).create(
        {"name": "合肥江淮运输有限公司", "code": "APP1"},
        ["0551-62123456", {"raw": "13905581234", "label": "mobile"}],
        allow_duplicate=True,
    )
    async with db.transaction() as session:
        customers = (await session.scalars(select(Customer).order_by(Customer.id))).all()
        imported = customers[0]
        assert (imported.name_pinyin, imported.name_initials) == (
            made.name_pinyin,
            made.name_initials,
        )
        assert (imported.kind, imported.vip_level, imported.blocked) == ("direct", 0, False)
        phones = (await session.scalars(select(PhoneNumber).order_by(PhoneNumber.id))).all()
    keys = [(p.customer_id, p.label, p.e164, p.digits_rev, p.kind) for p in phones]
    assert keys[:2] == [
        (imported.id, "phone", "+865516212345 6".replace(" ", ""), "65432126155", "landline"),
        (imported.id, "mobile", "+8613905581234", "43218550931", "mobile"),
    ]
    assert [k[1:] for k in keys[2:]] == [k[1:] for k in keys[:2]]
    entries = await list_history(db, "customer", imported.id)
    assert [(e.action, e.note) for e in entries] == [("import", "created; imported from c.csv")]
    vehicle_history = await count(db, ChangeRecord) - 2  # customer import + app create
    assert vehicle_history == 1


async def test_reimport_changes_nothing_and_update_is_recorded(
    db: Database, tmp_path: Path
) -> None:
    path = write_xlsx(tmp_path / "c.xlsx", GOOD)
    first = await run_import(db, path, ImportOptions("customers"))
    assert dict(first.counts) == {"new": 2}
    history = await count(db, ChangeRecord)
    again = await run_import(db, path, ImportOptions("customers"))
    assert dict(again.counts) == {"unchanged": 2}
    assert await count(db, ChangeRecord) == history and await count(db, Customer) == 2
    # The file changes: a new address, a second phone, a second vehicle → updated.
    changed = [list(GOOD[0]), list(GOOD[1])]
    changed[1][3] = "淮北"
    changed[1][4] = "0561-3123456"
    changed[0][6] = vin(2)  # another vehicle for the same customer (matched by phone)
    path2 = write_csv(tmp_path / "c2.csv", changed)
    third = await run_import(db, path2, ImportOptions("customers"))
    assert dict(third.counts) == {"updated": 2}
    async with db.transaction() as session:
        zhang = (await session.scalars(select(Customer).where(Customer.code == "C100"))).one()
        assert zhang.city == "淮北"
    entries = await list_history(db, "customer", zhang.id)
    assert [e.action for e in entries] == ["import", "import"]
    assert set(entries[1].changed) >= {"city", "phones"}
    # The import entry is a real history point: restore goes back to the first import.
    await restore(db, "customer", zhang.id, change_id=entries[0].id)
    async with db.transaction() as session:
        assert (await session.get(Customer, zhang.id)).city == "宿州"  # type: ignore[union-attr]
    assert await count(db, Vehicle) == 2


async def test_dry_run_writes_nothing_and_counts_like_the_real_run(
    db: Database, existing: Customer, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "c.csv", [*GOOD, *BAD, DUPLICATE])
    before = (await count(db, Customer), await count(db, ChangeRecord))
    dry = await run_import(db, path, ImportOptions("customers", dry_run=True))
    assert (await count(db, Customer), await count(db, ChangeRecord)) == before
    real = await run_import(db, path, ImportOptions("customers"))
    assert dry.counts == real.counts and dry.dry_run and not real.dry_run
    assert [(p.row, p.reason) for p in dry.problems] == [(p.row, p.reason) for p in real.problems]


async def test_duplicates_within_the_file_and_against_the_database(
    db: Database, existing: Customer, tmp_path: Path
) -> None:
    rows = [
        ["C1", "甲公司", "", "", "", "13900000001", vin(11), "", "", ""],
        ["C1", "乙公司", "", "", "", "13900000002", "", "", "", ""],  # same code as row 2
        ["", "丙公司", "", "", "", "13900000001", "", "", "", ""],  # same phone as row 2
        ["", "丁公司", "", "", "", "13900000003", vin(11), "", "", ""],  # same VIN as row 2
        ["", "北京燕山物流有限责任公司", "", "", "", "13801012345", "", "", "", ""],  # another name
    ]
    report = await run_import(db, write_csv(tmp_path / "d.csv", rows), ImportOptions("customers"))
    assert dict(report.counts) == {"new": 1, "duplicate": 4}
    reasons = {p.row: p.reason for p in report.problems}
    assert "row 2" in reasons[3] and "row 2" in reasons[4] and "row 2" in reasons[5]
    assert "北京燕山物流有限公司" in reasons[6] and "alike" in reasons[6]
    assert await count(db, Customer) == 2
    # The same phone with the customer's own name is that customer.
    same = [["", "北京燕山物流有限公司", "", "北京", "", "13801012345", "", "", "", ""]]
    report = await run_import(db, write_csv(tmp_path / "s.csv", same), ImportOptions("customers"))
    assert dict(report.counts) == {"updated": 1}
    assert await count(db, Customer) == 2


async def test_name_only_rows_match_by_exact_name(db: Database, tmp_path: Path) -> None:
    header = ["客户名称", "地址"]
    path = write_csv(tmp_path / "n.csv", [["某某公司", "长江路1号"]], header=header)
    assert dict((await run_import(db, path, ImportOptions("customers"))).counts) == {"new": 1}
    assert dict((await run_import(db, path, ImportOptions("customers"))).counts) == {"unchanged": 1}


async def test_row_with_too_many_cells_and_header_only(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(
        "客户名称,手机\n甲公司,13900000001\n乙公司,13900000002,多余\n", encoding="utf-8"
    )
    report = await run_import(db, path, ImportOptions("customers"))
    assert dict(report.counts) == {"new": 1, "invalid": 1}
    assert report.problems[0].row == 3 and "3 cells" in report.problems[0].reason
    only = tmp_path / "header.csv"
    only.write_text("客户名称,手机\n", encoding="utf-8")
    empty = await run_import(db, only, ImportOptions("customers"))
    assert empty.rows == 0 and "no data rows" in empty.warnings[0]


async def test_phone_of_two_customers_with_the_same_name_is_ambiguous(
    db: Database, tmp_path: Path
) -> None:
    service = CustomerService(db)
    for _ in range(2):
        await service.create({"name": "重名物流公司"}, ["13955500000"], allow_duplicate=True)
    row = [["", "重名物流公司", "", "", "", "13955500000", "", "", "", ""]]
    report = await run_import(db, write_csv(tmp_path / "a.csv", row), ImportOptions("customers"))
    assert dict(report.counts) == {"duplicate": 1}
    assert "2 customers named 重名物流公司" in report.problems[0].reason
