"""The admin import page and API: upload, dry run, result page, error report; admins only,
CSRF on every POST, a size limit with a clear 413."""

from __future__ import annotations

import csv
import io
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from desk_world import World, login_ok

from agent_desktop.imports import uploads

HTML = {"Accept": "text/html"}
CSV_TEXT = (
    "客户名称,手机,车架号\n"
    "芜湖新锐物流有限公司,13955300001,\n"
    ",13955300002,\n"  # no name
    "北京燕山物流有限公司,13801012345,\n"  # the world's customer, same name: unchanged
)


def form(kind: str, dry_run: bool, content: bytes, filename: str = "客户.csv") -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("kind", kind)
    if dry_run:
        data.add_field("dry_run", "1")
    data.add_field("file", io.BytesIO(content), filename=filename, content_type="text/csv")
    return data


async def upload(client: TestClient[Any, Any], csrf: str, dry_run: bool, content: bytes) -> Any:
    return await client.post(
        "/api/admin/import",
        data=form("customers", dry_run, content),
        headers={"X-CSRF-Token": csrf, "Accept": "application/json"},
    )


async def test_admin_dry_run_then_import_with_report(
    client: TestClient[Any, Any], world: World
) -> None:
    csrf = await login_ok(client, "admin1")
    page = await client.get("/admin/import", headers=HTML)
    text = await page.text()
    assert page.status == 200 and "数据导入" in text and 'name="dry_run"' in text
    assert '<option value="customers">客户</option>' in text
    content = CSV_TEXT.encode("gbk")
    dry = await upload(client, csrf, True, content)
    assert dry.status == 200, await dry.text()
    body = await dry.json()
    assert body["dry_run"] is True and body["encoding"] == "gb18030"
    assert body["counts"] == {"new": 1, "updated": 0, "unchanged": 1, "duplicate": 0, "invalid": 1}
    searched = await client.get("/api/customers/search?q=wuhuxinrui")
    assert "芜湖" not in await searched.text()  # the dry run wrote nothing
    result = await client.get(body["result_url"], headers=HTML)
    html = await result.text()
    assert result.status == 200 and "试运行，未写入任何数据" in html and "下载错误报告" in html
    report = await client.get(body["report_url"])
    assert report.status == 200 and "attachment" in report.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO((await report.read()).decode("utf-8-sig"))))
    assert rows[1][:2] == ["3", "客户名称"] and "empty" in rows[1][4]
    real = await (await upload(client, csrf, False, content)).json()
    assert real["counts"]["new"] == 1 and real["dry_run"] is False
    assert real["counts"] == {**body["counts"]}


async def test_plain_form_post_redirects_to_the_result(
    client: TestClient[Any, Any], world: World
) -> None:
    csrf = await login_ok(client, "admin1")
    data = form("customers", True, CSV_TEXT.encode("utf-8"))
    data.add_field("_csrf", csrf)
    response = await client.post("/admin/import", data=data, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"].startswith("/admin/import/results/")


async def test_non_admin_is_refused_and_csrf_is_required(
    client: TestClient[Any, Any], world: World
) -> None:
    csrf = await login_ok(client, "agent_east")
    assert (await client.get("/admin/import", headers=HTML)).status == 403
    assert (await upload(client, csrf, True, CSV_TEXT.encode())).status == 403
    client.session.cookie_jar.clear()
    await login_ok(client, "admin1")
    response = await client.post(
        "/api/admin/import", data=form("customers", True, CSV_TEXT.encode())
    )
    assert response.status == 403 and (await response.json())["error_id"] == "csrf_failed"


async def test_too_large_and_bad_files_get_clear_errors(
    client: TestClient[Any, Any], world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    csrf = await login_ok(client, "admin1")
    monkeypatch.setattr(uploads, "MAX_UPLOAD_BYTES", 1024 * 1024)
    big = await upload(client, csrf, True, b"x" * (1024 * 1024 + 10))
    assert big.status == 413
    assert "larger than 1 MB" in (await big.json())["message"]
    junk = await upload(client, csrf, True, bytes(range(256)) * 10)
    assert junk.status == 422 and (await junk.json())["error_id"] == "import_file_invalid"
    header_only = await upload(client, csrf, True, "地址\n".encode())
    body = await header_only.json()
    assert header_only.status == 422 and body["error_id"] == "import_column_missing"
    exe = await client.post(
        "/api/admin/import",
        data=form("customers", True, b"MZ", filename="setup.exe"),
        headers={"X-CSRF-Token": csrf},
    )
    assert exe.status == 422 and ".csv or .xlsx" in (await exe.json())["message"]
