"""A crash mid-import leaves only whole batches; running the same file again finishes the
job. Also the contacts and vehicles kinds, and row checks in a worker process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from import_files import customer_rows, vin, write_csv, write_xlsx
from sqlalchemy import func, select

from crm_core.db import Database
from crm_core.importing import ImportOptions, run_import
from crm_core.models import ChangeRecord, Contact, Customer, PhoneNumber, Vehicle
from crm_core.search import search

ROOT = Path(__file__).resolve().parents[2]


async def counts(db: Database) -> tuple[int, int, int, int]:
    async with db.connect() as conn:
        out = []
        for model in (Customer, PhoneNumber, Vehicle, ChangeRecord):
            query = select(func.count()).select_from(model)
            out.append(int((await conn.execute(query)).scalar_one()))
    return out[0], out[1], out[2], out[3]


async def test_failure_in_batch_three_keeps_two_whole_batches(db: Database, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "c.csv", customer_rows(1000))
    done: list[int] = []

    def crash_after_two(rows: int, _expected: int) -> None:
        done.append(rows)
        if len(done) == 2:
            raise RuntimeError("power cut")

    options = ImportOptions("customers", batch_size=300)
    with pytest.raises(RuntimeError, match="power cut"):
        await run_import(db, path, options, crash_after_two)
    # Each customer: one phone, one vehicle, two history entries (customer, vehicle).
    assert await counts(db) == (600, 600, 600, 1200)
    again = await run_import(db, path, options)
    assert dict(again.counts) == {"unchanged": 600, "new": 400}
    assert await counts(db) == (1000, 1000, 1000, 2000)


async def test_sigkill_mid_import_then_resume(db: Database, tmp_path: Path) -> None:
    total, batch = 8000, 500
    path = write_csv(tmp_path / "big.csv", customer_rows(total))
    env = dict(
        os.environ, DATABASE_URL=db.settings.database_url, HOTLINE_VAR_DIR=str(tmp_path / "var")
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent_desktop.cli", "import", "customers", str(path),
        "--batch-size", str(batch), "--json",
        cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(3000):
            if (await counts(db))[0] >= 2 * batch:
                break
            await asyncio.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    customers, phones, vehicles, history = await counts(db)
    assert 0 < customers < total, "the import finished before it could be killed"
    assert customers % batch == 0
    assert (phones, vehicles, history) == (customers, customers, 2 * customers)
    again = await run_import(db, path, ImportOptions("customers", batch_size=batch))
    assert dict(again.counts) == {"unchanged": customers, "new": total - customers}
    assert await counts(db) == (total, total, total, 2 * total)


async def test_rows_checked_in_a_worker_process_give_the_same_result(
    db: Database, tmp_path: Path
) -> None:
    rows = customer_rows(50)
    rows[10][5] = "12345"
    path = write_xlsx(tmp_path / "c.xlsx", rows)
    report = await run_import(db, path, ImportOptions("customers", batch_size=20, parallel=True))
    assert dict(report.counts) == {"new": 49, "invalid": 1}
    assert report.problems[0].row == 12
    hits = await search(db, "hefeiceshi")
    assert hits and hits[0].name.startswith("合肥测试物流有限公司")


async def test_contacts_and_vehicles_files_keyed_by_code_or_phone(
    db: Database, tmp_path: Path
) -> None:
    await run_import(
        db, write_csv(tmp_path / "c.csv", customer_rows(3)), ImportOptions("customers")
    )
    contacts = write_csv(
        tmp_path / "contacts.csv",
        [
            ["K000000", "", "单雄信", "采购部", "经理", "13912340000"],
            ["", "13900000001", "曾小贤", "", "", "0551-62123457"],
            ["K999999", "", "查无此人", "", "", ""],
            ["K000002", "", "", "", "", ""],
        ],
        header=["客户编码", "客户电话", "联系人", "部门", "职务", "手机"],
    )
    report = await run_import(db, contacts, ImportOptions("contacts"))
    assert dict(report.counts) == {"new": 2, "invalid": 2}
    assert "no customer found for K999999" in report.problems[-1].reason or any(
        "K999999" in p.reason for p in report.problems
    )
    again = await run_import(db, contacts, ImportOptions("contacts"))
    assert again.counts["unchanged"] == 2
    async with db.transaction() as session:
        shan = (await session.scalars(select(Contact).where(Contact.name == "单雄信"))).one()
    assert (shan.name_pinyin, shan.name_initials) == ("shanxiongxin", "sxx")  # surname reading
    assert any(h.matched_on == "contact" for h in await search(db, "sxx"))
    vehicles = write_csv(
        tmp_path / "vehicles.xlsx.csv",
        [
            ["K000000", "", vin(500), "皖A88888", "2022-05-06"],
            ["", "13900000002", vin(501), "", ""],
            ["K000001", "", vin(1), "", ""],  # customer K000000's vehicle
            ["K000001", "", vin(501)[:-1] + "X", "", ""],  # bad check digit
        ],
        header=["客户编码", "客户电话", "车架号", "车牌号", "购车日期"],
    )
    report = await run_import(db, vehicles, ImportOptions("vehicles"))
    assert dict(report.counts) == {"new": 2, "duplicate": 1, "invalid": 1}
    assert "another customer" in next(p.reason for p in report.problems if p.row == 4)
    assert dict((await run_import(db, vehicles, ImportOptions("vehicles"))).counts) == {
        "unchanged": 2,
        "duplicate": 1,
        "invalid": 1,
    }
    assert any(h.matched_on == "plate" for h in await search(db, "皖A88888"))
