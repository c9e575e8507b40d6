"""The agent desktop and the wallboard in real headless Chromium, against the real server,
the real test PBX and real SIPp phones. Screenshots go to var/artifacts/.

Playwright's sync API runs in these (sync) tests; the CRM is prepared with asyncio.run in
a fixture, so no event loop is shared with the browser.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from live_server import LiveServer, live_server
from pbx_harness import CALLER_MOBILE, PbxUnderTest, Sipp, settings_env, start_phone

from agent_desktop.cli.demo import CARRIER_SCENARIO
from crm_core import migrate
from crm_core.customers import CustomerService
from crm_core.db import Database
from crm_core.settings import Settings
from crm_core.users import DEMO_PASSWORD, ensure_demo_users

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "artifacts"
KNOWN = "阜阳顺达物流有限公司"
UNKNOWN_CALLER = "13611112222"

pytestmark = [
    pytest.mark.pbx,
    pytest.mark.usefixtures("calls_cleared"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium missing"),
]


async def _prepare(url: str) -> None:
    settings = Settings(database_url=url)
    await asyncio.to_thread(migrate.upgrade, settings)
    db = Database.open(settings)
    try:
        await ensure_demo_users(db)
        await CustomerService(db).create(
            {"name": KNOWN, "code": "C0000001", "region": "华东", "city": "阜阳"}, [CALLER_MOBILE]
        )
    finally:
        await db.close()


@pytest.fixture
def crm_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"
    # A thread of its own: pytest-asyncio may have a loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _prepare(url)).result()
    return url


@pytest.fixture
def server(pbx: PbxUnderTest, crm_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(pbx, crm_url, tmp_path) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def new_page(browser: Any, server: LiveServer) -> Iterator[Callable[[str, str], Any]]:
    contexts: list[Any] = []

    def open_as(username: str, path: str) -> Any:
        context = browser.new_context(
            locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1400, "height": 1000}
        )
        context.grant_permissions(["notifications"], origin=server.base)
        contexts.append(context)
        page = context.new_page()
        # Shown by pytest when a test fails: the page's own view of what went wrong.
        page.on("console", lambda m: print(f"[{username} console] {m.text}"))
        page.on("pageerror", lambda e: print(f"[{username} pageerror] {e}"))
        page.goto(server.base + "/login?next=" + path)
        page.fill("#username", username)
        page.fill("#password", DEMO_PASSWORD)
        page.click("#login-submit")
        page.wait_for_url("**" + path)
        return page

    yield open_as
    for context in contexts:
        context.close()


def _desk(new_page: Callable[[str, str], Any], username: str = "agent1001") -> Any:
    page = new_page(username, "/desktop")
    page.wait_for_selector("#ws-status[data-state=open]", timeout=15000)
    return page


def _call(pbx: PbxUnderTest, tmp_path: Path, caller: str, hold_ms: int) -> Sipp:
    """A carrier call that presses no key (the IVR menu times out into the queue): the
    scenario of `hotline demo-call`. The caller hangs up hold_ms after the PBX answers."""
    workdir = tmp_path / f"carrier-{time.monotonic_ns()}"
    workdir.mkdir()
    scenario = workdir / "carrier_no_key.xml"
    scenario.write_text(CARRIER_SCENARIO, encoding="utf-8")
    s = pbx.settings
    args = [
        f"127.0.0.1:{s.sip_port}", "-s", s.hotline_number, "-p", str(s.carrier_port),
        "-key", "caller", caller, "-m", "1", "-d", str(hold_ms),
    ]  # fmt: skip
    return Sipp(workdir, str(scenario), args)


def _screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def _receipts(server: LiveServer) -> list[tuple[Any, Any]]:
    path = server.settings.database_url.split("///", 1)[1]
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(
            "select p.delivered_at, p.displayed_at from screen_pops p join users u"
            " on u.id = p.agent_id where u.username = 'agent1001'"
        ).fetchall()


def _wait(predicate: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_known_caller_pops_with_the_name_while_ringing_then_wraps_up(
    pbx: PbxUnderTest,
    server: LiveServer,
    new_page: Callable[[str, str], Any],
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    sipp_processes.append(start_phone(pbx, "1001", 6000, tmp_path))
    sipp_processes.append(start_phone(pbx, "1002", None, tmp_path))
    page = _desk(new_page)
    assert "坐席 李娜" in page.locator("#current-user").inner_text()

    sipp_processes.append(_call(pbx, tmp_path, CALLER_MOBILE, 40000))
    # The name must be on screen while the card still says the phone rings.
    page.wait_for_selector(".pop[data-state=ringing] .customer-name", timeout=60000)
    assert page.locator(".pop .customer-name").inner_text() == KNOWN
    assert page.locator(".pop .pop-state").inner_text() == "振铃中"
    assert "139****1234" in page.locator(".pop .pop-caller").inner_text()
    assert any(ch.startswith("PJSIP/1001") for ch in pbx.channels())  # really ringing
    _screenshot(page, "desktop_pop_ringing.png")

    page.wait_for_selector(".pop[data-state=connected]", timeout=30000)
    page.wait_for_selector(".pop[data-state=wrapup]", timeout=60000)
    card = page.locator(".pop[data-state=wrapup]")
    card.locator("select[name=disposition]").select_option("consultation")
    card.locator("textarea[name=note]").fill("客户咨询保养周期，已答复")
    card.locator(".wrapup-form button[type=submit]").click()
    page.wait_for_selector(".pop.processed", timeout=20000)
    _screenshot(page, "desktop_wrapped_up.png")
    # The browser acknowledged the pop as delivered and as displayed (docs/websocket.md).
    assert _wait(lambda: bool(_receipts(server)) and all(d and s for d, s in _receipts(server))), (
        _receipts(server)
    )


def test_unknown_caller_quick_create_warns_of_duplicates_and_click_to_dial_rings(
    pbx: PbxUnderTest,
    server: LiveServer,
    new_page: Callable[[str, str], Any],
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    phone = start_phone(pbx, "1001", 1500, tmp_path)
    sipp_processes.append(phone)
    page = _desk(new_page)
    sipp_processes.append(_call(pbx, tmp_path, UNKNOWN_CALLER, 40000))

    form = page.locator(".pop form.quick-create")
    form.wait_for(timeout=60000)
    assert form.locator("input[name=phone]").input_value() == UNKNOWN_CALLER
    form.locator("input[name=phone]").fill(CALLER_MOBILE)
    form.locator("input[name=name]").fill(KNOWN)
    warning = form.locator(".dup-warning")
    warning.wait_for(state="visible", timeout=15000)
    assert KNOWN in warning.inner_text() and "可能重复" in warning.inner_text()
    _screenshot(page, "desktop_duplicate_warning.png")

    form.locator("input[name=phone]").fill(UNKNOWN_CALLER)
    form.locator("input[name=name]").fill("宿州新起点冷链运输有限公司")
    warning.wait_for(state="hidden", timeout=15000)
    form.locator("button[type=submit]").click()
    page.wait_for_selector(".pop .customer-name", timeout=15000)
    assert page.locator(".pop .customer-name").inner_text() == "宿州新起点冷链运输有限公司"

    # Click-to-dial on the caller's number rings the agent's own phone first.
    page.wait_for_selector(".pop[data-state=wrapup]", timeout=60000)
    invites_before = _invites(phone)
    page.locator(".pop .pop-caller a.dial").click()
    assert _wait(lambda: _invites(phone) > invites_before, timeout=30), "agent phone not rung"


def _invites(phone: Sipp) -> int:
    return sum(
        log.read_text(errors="replace").count("INVITE sip:")
        for log in phone.workdir.glob("*_messages.log")
    )


FIGURE_AT_LEAST = """([figure, least]) => {
  const node = document.querySelector(`[data-queue=hotline] [data-figure=${figure}] .value`);
  return node !== null && Number(node.textContent) >= least;
}"""


def test_wallboard_shows_the_waiting_call_then_the_answer(
    pbx: PbxUnderTest,
    server: LiveServer,
    new_page: Callable[[str, str], Any],
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    sipp_processes.append(start_phone(pbx, "1001", 5000, tmp_path))
    board = new_page("supervisor", "/wallboard")
    board.wait_for_selector("#wb-status[data-state=open]", timeout=15000)
    agent = _desk(new_page)  # the agent is logged in too, as on a real floor
    assert agent.locator("#call-panel").is_visible()

    sipp_processes.append(_call(pbx, tmp_path, CALLER_MOBILE, 35000))
    waiting = board.locator("[data-queue=hotline] [data-figure=waiting] .value")
    waiting.wait_for(timeout=60000)
    board.wait_for_function(FIGURE_AT_LEAST, arg=["waiting", 1], timeout=60000)
    _screenshot(board, "wallboard_waiting.png")
    board.wait_for_function(FIGURE_AT_LEAST, arg=["answered_today", 1], timeout=90000)
    assert board.locator("#wb-agents tbody tr").count() >= 1
    _screenshot(board, "wallboard_answered.png")


def test_hotline_demo_call_pops_on_agent1001s_desktop(
    pbx: PbxUnderTest, server: LiveServer, new_page: Callable[[str, str], Any], tmp_path: Path
) -> None:
    """The newcomer's path: `hotline demo-call` plays the carrier and agent1001's phone."""
    page = _desk(new_page)
    env = settings_env(server.settings)
    demo = subprocess.Popen(
        [sys.executable, "-m", "agent_desktop.cli", "demo-call", "--ring", "6", "--talk", "35"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        page.wait_for_selector(".pop[data-state=ringing] .customer-name", timeout=60000)
        assert page.locator(".pop .customer-name").inner_text() == KNOWN
        page.wait_for_selector(".pop[data-state=connected]", timeout=30000)
        output, _ = demo.communicate(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 0, output
    assert f"from {CALLER_MOBILE} ({KNOWN})" in output
