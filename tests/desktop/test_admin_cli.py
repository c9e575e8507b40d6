"""`hotline users|agents|queues|offices|technicians`: the same service as the pages, in a shell."""

from __future__ import annotations

import asyncio
import json

import pytest

from agent_desktop.cli import main
from crm_core.db import Database
from crm_core.history import list_history
from crm_core.models import AuditEntry, User
from ticketing.models import StaffMobile


async def hotline(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db: Database, *args: str
) -> tuple[int, str, str]:
    monkeypatch.setenv("DATABASE_URL", db.settings.database_url)
    monkeypatch.setenv("HOTLINE_PBX_INSTANCE", "pytest-nopbx")
    code = await asyncio.to_thread(main, list(args))
    out, err = capsys.readouterr()
    return code, out, err


async def test_a_team_is_set_up_from_the_shell(
    db: Database, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def run(*args: str) -> str:
        code, out, err = await hotline(capsys, monkeypatch, db, *args)
        assert code == 0, err
        return out

    await run("offices", "add", "合肥服务站", "--region", "华东", "--working-hours", "08:30-17:30")
    out = await run("users", "add", "zhangsan", "--name", "坐席 张三", "--office", "合肥服务站")
    assert "password (shown once" in out
    out = await run("agents", "extension", "zhangsan", "1010", "--json")
    first = json.loads(out.splitlines()[0])
    assert first["extension"] == "1010" and len(first["sip_secret"]) >= 20
    assert json.loads(out.splitlines()[1])["pbx"]["status"] in ("not_running", "not_installed")
    await run("agents", "queues", "zhangsan", "hotline:0", "vip:5")
    await run("queues", "add", "complaints", "--display-name", "投诉专线", "--strategy", "rrmemory")
    await run(
        "technicians",
        "add",
        "tech09",
        "--name",
        "工程师 赵九",
        "--office",
        "合肥服务站",
        "--mobile",
        "139-0558-7788",
        "--skills",
        "消防车,环卫车",
    )
    rows = [json.loads(line) for line in (await run("users", "list", "--json")).splitlines()]
    by_name = {r["username"]: r for r in rows}
    assert by_name["zhangsan"]["queues"] == [
        {"queue": "hotline", "penalty": 0},
        {"queue": "vip", "penalty": 5},
    ]
    assert by_name["tech09"]["role"] == "technician"
    await run("users", "disable", "zhangsan")
    async with db.transaction() as session:
        user = await session.scalars(User.__table__.select().where(User.username == "zhangsan"))
        zhangsan = user.first()
        mobile = await session.get(StaffMobile, by_name["tech09"]["id"])
        audits = (
            await session.scalars(
                AuditEntry.__table__.select().where(AuditEntry.action.like("admin_%"))
            )
        ).all()
    assert zhangsan is not None
    assert mobile is not None and mobile.e164 == "+8613905587788"
    history = await list_history(db, "user", by_name["zhangsan"]["id"])
    assert [h.action for h in history] == ["create", "extension", "queues", "disable"]
    assert all(h.note and "cli:" in h.note for h in history)
    assert len(audits) >= 7
    listing = await run("history", "list", "user", str(by_name["zhangsan"]["id"]))
    assert "disable" in listing


async def test_shell_mistakes_get_a_clear_message_and_change_nothing(
    db: Database, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = [
        (("users", "add", "wang", "--name", "王", "--office", "火星站"), "no office"),
        (("users", "add", "wang", "--name", "王", "--password", "short"), "at least 8"),
        (("agents", "extension", "nobody", "1010"), "no user nobody"),
        (
            ("technicians", "add", "t1", "--name", "t", "--office", "x", "--mobile", "12"),
            "not a mobile number",
        ),
        (("queues", "add", "Bad-Name", "--display-name", "x"), "queue name"),
        (("offices", "add", "站", "--working-hours", "18:00-08:00"), "working hours"),
    ]
    for args, message in cases:
        code, _out, err = await hotline(capsys, monkeypatch, db, *args)
        assert code == 1, args
        assert message in err, (args, err)
    async with db.transaction() as session:
        assert (await session.scalars(User.__table__.select())).first() is None
