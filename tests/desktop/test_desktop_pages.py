"""The page framework: Chinese by default, English on request, role-aware navigation,
security headers, the customer 360 and a complete zh_CN catalogue."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from desk_world import World, login_ok

import agent_desktop
from agent_desktop import i18n
from agent_desktop.common.pages import LABELS

HTML = {"Accept": "text/html"}
TEMPLATES = Path(agent_desktop.__file__).parent / "templates"


async def test_login_page_is_chinese_by_default_and_english_on_request(
    client: TestClient[Any, Any],
) -> None:
    page = await client.get("/login", headers=HTML)
    text = await page.text()
    assert page.status == 200 and '<html lang="zh-CN">' in text
    assert "用户名" in text and "密码" in text and "400 服务热线" in text
    switched = await client.get("/lang/en?next=/login", headers=HTML)
    assert switched.status == 200 and str(switched.url).endswith("/login")
    english = await switched.text()
    assert '<html lang="en">' in english and "Username" in english and "用户名" not in english


async def test_language_switch_stays_on_site(client: TestClient[Any, Any]) -> None:
    response = await client.get("/lang/en?next=//evil.example", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/desktop"


async def test_wrong_password_message_in_chinese(client: TestClient[Any, Any]) -> None:
    page = await client.get("/login")
    token = page.cookies["hotline_login_csrf"].value
    texts = []
    for _ in range(3):
        response = await client.post(
            "/login", data={"username": "agent_east", "password": "wrong-pass", "_csrf": token}
        )
        texts.append(await response.text())
    assert "用户名或密码错误" in texts[0]
    assert "密码连续输错3次，账户已锁定，请15分钟后再试" in texts[2]


async def test_navigation_follows_the_role(client: TestClient[Any, Any]) -> None:
    await login_ok(client, "agent_east")
    desk = await (await client.get("/desktop", headers=HTML)).text()
    assert 'id="call-panel"' in desk and "客户查询" in desk and "坐席工作台" in desk
    assert "/login-history" not in desk
    client.session.cookie_jar.clear()
    await login_ok(client, "admin1")
    admin = await (await client.get("/desktop", headers=HTML)).text()
    assert 'href="/login-history"' in admin and "系统管理员" in admin


async def test_pages_carry_security_headers(client: TestClient[Any, Any]) -> None:
    await login_ok(client, "agent_east")
    response = await client.get("/desktop", headers=HTML)
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "ws://127.0.0.1:8080" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    assert re.search(r'<meta name="csrf-token" content="[\w-]{40,}">', await response.text())


async def test_customer_360_masks_numbers_and_offers_reveal(
    client: TestClient[Any, Any], world: World
) -> None:
    await login_ok(client, "agent_east")
    page = await client.get(f"/customers/{world.east_customer}", headers=HTML)
    text = await page.text()
    assert page.status == 200
    assert "合肥江淮运输有限公司" in text and "139****1234" in text
    assert "13905581234" not in text and "139 0558 1234" not in text
    assert f"/phones/{world.east_phone}/reveal" in text and "显示号码" in text
    assert "修改记录" in text and "新建" in text  # the create is in the change history


async def test_search_page(client: TestClient[Any, Any], world: World) -> None:
    await login_ok(client, "agent_east")
    page = await (await client.get("/customers/search?q=hfjh", headers=HTML)).text()
    assert f'href="/customers/{world.east_customer}"' in page
    empty = await (await client.get("/customers/search?q=北京", headers=HTML)).text()
    assert "没有匹配的客户" in empty
    too_long = await client.get("/customers/search", params={"q": "x" * 80}, headers=HTML)
    assert too_long.status == 200 and "最多64个字符" in await too_long.text()


async def test_login_history_page_shows_results_and_unlock(
    client: TestClient[Any, Any], world: World
) -> None:
    from desk_world import audit_rows, login

    for _ in range(3):
        await login(client, "agent_north", "wrong-pass")
    csrf = await login_ok(client, "admin1")
    page = await (await client.get("/login-history", headers=HTML)).text()
    assert "密码错误" in page and "成功" in page and "已锁定账户" in page
    uid = world.users["agent_north"]
    assert f"/admin/users/{uid}/unlock" in page
    unlocked = await client.post(
        f"/admin/users/{uid}/unlock", data={"_csrf": csrf}, allow_redirects=False
    )
    assert unlocked.status == 303
    assert len(await audit_rows(world.db, "account_unlocked")) == 1
    client.session.cookie_jar.clear()
    assert (await login(client, "agent_north")).status == 200


def _template_msgids() -> set[str]:
    found: set[str] = set()
    for path in TEMPLATES.glob("*.html"):
        found |= set(re.findall(r'_\(\s*"([^"]+)"', path.read_text(encoding="utf-8")))
        found |= set(re.findall(r"_\(\s*'([^']+)'", path.read_text(encoding="utf-8")))
    return found


def test_every_ui_string_has_a_chinese_translation() -> None:
    zh = i18n.catalogue("zh_CN")
    wanted = _template_msgids() | {v for table in LABELS.values() for v in table.values()}
    wanted |= {"Desktop", "Customer search", "Login history"}  # navigation labels
    assert len(wanted) > 80
    assert sorted(wanted - set(zh)) == []
    assert all(re.search(r"[\u4e00-\u9fff]", zh[m]) for m in wanted if m != "VIN")


def test_english_catalogue_falls_back_to_the_msgid() -> None:
    assert i18n.translator("en")("Login history") == "Login history"
    assert i18n.translator("xx")("Login history") == "登录历史"  # unknown → default
