"""Setting up a team without the demo seed, through the real server, PBX, SIPp and Chromium.

This module runs its own Asterisk instance ("pytest-admin", ports +22000): the admin's changes
re-render that PBX from the CRM, which must not disturb the shared instance of other modules.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from live_server import LiveServer, live_server
from pbx_harness import (
    CALLER_MOBILE,
    PbxUnderTest,
    Sipp,
    pbx_test_settings,
    place_call,
    settings_env,
    start_registered_phone,
)

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
ADMIN_PASSWORD = "Hefei-first-1"
ADMIN_OWN = "Hefei-chosen-22"
AGENT_OWN = "Anhui-own-333"
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "artifacts"

pytestmark = [
    pytest.mark.pbx,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium missing"),
]


@pytest.fixture(scope="module")
def admin_pbx(
    pbx_provisioned: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PbxUnderTest]:
    instance = PbxUnderTest(pbx_test_settings("pytest-admin", 22000), tmp_path_factory.mktemp("a"))
    instance.write_agents([])  # no phones at all until an admin gives one
    instance.stop()
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def server(
    admin_pbx: PbxUnderTest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("admin-server")
    url = f"sqlite+aiosqlite:///{workdir / 'team.db'}"
    settings = admin_pbx.settings.replace(database_url=url)
    # The first admin, from the shell, as docs/admin.md tells an installer to do it.
    created = subprocess.run(
        [sys.executable, "-m", "agent_desktop.cli", "users", "add", "boss", "--name", "系统管理员",
         "--role", "admin", "--password", ADMIN_PASSWORD],
        env=settings_env(settings), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    with live_server(admin_pbx, url, workdir) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield instance
        instance.close()


def _page(browser: Any, server: LiveServer, name: str) -> Any:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 1000})
    context.grant_permissions(["notifications"], origin=server.base)
    page = context.new_page()
    page.on("console", lambda m: print(f"[{name} console] {m.text}"))
    page.on("pageerror", lambda e: print(f"[{name} pageerror] {e}"))
    return page


def _first_login(page: Any, server: LiveServer, username: str, given: str, own: str) -> None:
    """Log in with the password an admin gave, and choose one's own as the app demands."""
    page.goto(server.base + "/login?next=/desktop")
    page.fill("#username", username)
    page.fill("#password", given)
    page.click("#login-submit")
    page.wait_for_url("**/account/password")
    assert page.locator("#password-required").is_visible()
    page.fill("input[name=current_password]", given)
    page.fill("input[name=password]", own)
    page.fill("input[name=confirm]", own)
    page.click("#password-form button[type=submit]")
    page.wait_for_url("**/desktop")


def _wait(predicate: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _registered(pbx: PbxUnderTest, extension: str) -> bool:
    return bool(
        re.search(rf"Contact:\s+{extension}/\S+\s+\S+\s+Avail", pbx.cli("pjsip show contacts"))
    )


def test_an_admin_sets_up_an_agent_whose_phone_registers_and_whose_desktop_pops(
    admin_pbx: PbxUnderTest,
    server: LiveServer,
    browser: Any,
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    admin = _page(browser, server, "boss")
    _first_login(admin, server, "boss", ADMIN_PASSWORD, ADMIN_OWN)
    admin.goto(server.base + "/admin/users")
    form = admin.locator("#new-user")
    form.locator("input[name=username]").fill("liming")
    form.locator("input[name=display_name]").fill("坐席 李明")
    form.locator("select[name=role]").select_option("agent")
    form.locator("input[name=extension]").fill("1010")
    form.locator("input[data-queue=hotline]").check()
    form.locator("button[type=submit]").click()
    result = admin.locator("[data-admin-result].ok")
    result.wait_for(timeout=30000)
    shown = result.inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    admin.screenshot(path=str(ARTIFACTS / "admin_new_agent.png"), full_page=True)
    password = re.search(r"password: (\S+)", shown)
    secret = re.search(r"SIP secret: (\S+)", shown)
    assert password and secret, shown
    assert "PBX reloaded" in shown and "res_pjsip" in shown, shown

    # The handset registers with the secret the admin was shown; a wrong one is refused.
    wrong = start_registered_phone(admin_pbx, "1010", "not-the-secret", tmp_path, registered_s=1)
    sipp_processes.append(wrong)
    assert wrong.wait(30) != 0
    assert not _registered(admin_pbx, "1010")
    sipp_processes.append(start_registered_phone(admin_pbx, "1010", secret.group(1), tmp_path))
    assert _wait(lambda: _registered(admin_pbx, "1010")), admin_pbx.cli("pjsip show contacts")
    assert "PJSIP/1010" in admin_pbx.cli("queue show hotline")

    desk = _page(browser, server, "liming")
    _first_login(desk, server, "liming", password.group(1), AGENT_OWN)
    desk.wait_for_selector("#ws-status[data-state=open]", timeout=15000)

    call = place_call(admin_pbx, tmp_path, CALLER_MOBILE, hold_ms=25000, dtmf="9")
    sipp_processes.append(call)
    desk.wait_for_selector(".pop[data-state=ringing]", timeout=60000)
    assert CALLER_MOBILE[-4:] in desk.locator(".pop .pop-caller").inner_text()
    desk.wait_for_selector(".pop[data-state=connected]", timeout=30000)
    desk.screenshot(path=str(ARTIFACTS / "admin_new_agent_pop.png"), full_page=True)
    assert call.wait(90) == 0, call.errors()


def test_a_call_in_progress_survives_an_extension_change_and_a_queue_change(
    admin_pbx: PbxUnderTest,
    server: LiveServer,
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    session = server.login("boss", ADMIN_OWN)
    reply = server.post("/api/admin/users", session, {
        "username": "wangfang", "display_name": "坐席 王芳", "extension": "1020",
        "queues": [{"queue": "hotline", "penalty": 0}],
    })  # fmt: skip
    sipp_processes.append(start_registered_phone(admin_pbx, "1020", reply["sip_secret"], tmp_path))
    assert _wait(lambda: _registered(admin_pbx, "1020"))
    call = place_call(admin_pbx, tmp_path, CALLER_MOBILE, hold_ms=30000, dtmf="9")
    sipp_processes.append(call)
    assert _wait(lambda: _talking(admin_pbx, "1020"), 60), admin_pbx.cli("core show channels")

    # An extension change: a new agent's phone (pjsip reload).
    added = server.post("/api/admin/users", session, {
        "username": "zhaolei", "display_name": "坐席 赵磊", "extension": "1021",
    })  # fmt: skip
    assert "res_pjsip" in added["pbx"]["detail"], added["pbx"]
    assert "1021" in admin_pbx.cli("pjsip show endpoints")
    # A queue change: the queue's ring time (queue reload).
    changed = _patch(server, session, "/api/admin/queues/hotline", {"ring_seconds": 12})
    assert "app_queue" in changed["pbx"]["detail"], changed["pbx"]
    assert "timeout = 12" in (admin_pbx.paths.etc_link / "queues.conf").read_text()
    assert _talking(admin_pbx, "1020"), admin_pbx.cli("core show channels")
    # The caller hangs up on its own after 30 s: a dropped call would fail the scenario.
    assert call.wait(90) == 0, call.errors()


def _talking(pbx: PbxUnderTest, extension: str) -> bool:
    out = pbx.cli("core show channels concise")
    return any(
        line.startswith(f"PJSIP/{extension}-") and "!Up!" in line for line in out.splitlines()
    )


def _patch(server: LiveServer, session: tuple[str, str], path: str, body: dict[str, Any]) -> Any:
    import json
    import urllib.request

    request = urllib.request.Request(
        f"{server.base}{path}",
        method="PATCH",
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            "Cookie": session[0],
            "X-CSRF-Token": session[1],
            "Origin": server.base,
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())
