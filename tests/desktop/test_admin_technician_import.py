"""`hotline import technicians`: the field staff list from a GBK CSV, through the admin
feature's import kind (same checks as `hotline technicians add`)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from crm_core.db import Database
from crm_core.models import ChangeRecord, Office, User
from crm_core.settings import Settings
from crm_core.users import create_user
from ticketing.models import StaffMobile

ROOT = Path(__file__).resolve().parents[2]
HEADER = ["用户名", "姓名", "手机", "服务站", "技能"]


def _hotline(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": settings.database_url, "HOTLINE_VAR_DIR": settings.var_dir}
    return subprocess.run(
        [sys.executable, "-m", "agent_desktop.cli", "import", *args],
        capture_output=True, text=True, env=env, timeout=120, check=False, cwd=ROOT,
    )  # fmt: skip


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="gbk", newline="") as handle:  # what Excel in China writes
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


async def test_technicians_come_in_from_a_staff_list(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    async with db.transaction() as session:
        session.add(Office(name="合肥服务站", region="华东", active=True))
    await create_user(db, {"username": "agent7", "display_name": "坐席", "role": "agent"})
    path = _write(
        tmp_path / "技术员.csv",
        [
            ["chengang", "服务工程师 陈刚", "139 0558 7001", "合肥服务站", "消防车"],
            ["liuwei", "服务工程师 刘伟", "0558-2123456", "合肥服务站", ""],  # a landline
            ["wuhao", "服务工程师 吴浩", "13905587003", "火星站", ""],  # no such office
            ["agent7", "坐席", "13905587004", "合肥服务站", ""],  # not a technician
            ["chengang2", "陈刚(重复)", "+86 139-0558-7001", "合肥服务站", ""],  # same mobile
        ],
    )
    report = tmp_path / "errors.csv"
    first = _hotline(settings, "technicians", str(path), "--json", "--report", str(report))
    assert first.returncode == 0, first.stderr
    counts = json.loads(first.stdout)["counts"]
    assert counts == {"new": 1, "updated": 0, "unchanged": 0, "duplicate": 2, "invalid": 2}
    text = report.read_text("utf-8-sig")
    assert "not a mobile number" in text and "no office '火星站'" in text
    assert "agent7 is a agent, not a technician" in text and "the same person as row 2" in text
    async with db.transaction() as session:
        tech = (await session.scalars(select(User).where(User.username == "chengang"))).one()
        mobile = await session.get(StaffMobile, tech.id)
        history = (
            await session.scalars(
                select(ChangeRecord.action).where(
                    ChangeRecord.entity == "user", ChangeRecord.entity_id == tech.id
                )
            )
        ).all()
    assert tech.role == "technician" and tech.office == "合肥服务站" and tech.skills == "消防车"
    assert tech.password_hash is None  # no login until an admin resets the password
    assert mobile is not None and mobile.e164 == "+8613905587001"
    assert list(history) == ["import"]

    again = json.loads(_hotline(settings, "technicians", str(path), "--json").stdout)["counts"]
    assert again["new"] == 0 and again["unchanged"] == 1

    _write(path, [["chengang", "服务工程师 陈刚", "13905587009", "合肥服务站", "消防车,环卫车"]])
    moved = json.loads(_hotline(settings, "technicians", str(path), "--json").stdout)["counts"]
    assert moved["updated"] == 1
    async with db.transaction() as session:
        mobile = await session.get(StaffMobile, tech.id)
        skills = await session.scalar(select(User.skills).where(User.id == tech.id))
    assert mobile is not None and mobile.e164 == "+8613905587009"
    assert skills == "消防车,环卫车"
