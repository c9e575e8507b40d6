"""Real headless Chromium (Debian's, through Playwright) against a real `hotline serve`.

The server runs as a subprocess on a free port with its own SQLite database seeded by
`hotline seed --customers 50`. Screenshots go to var/artifacts/ for people to look at.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "artifacts"
DEMO_PASSWORD = "hotline-demo"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian chromium missing: scripts/system-packages.sh"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_healthy(url: str, process: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"hotline serve exited: {log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("hotline serve did not become healthy")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("browser")
    db_path = root / "hotline.db"
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{db_path}",
        "HOTLINE_VAR_DIR": str(root / "var"),
        "HOTLINE_HTTP_PORT": str(port),
        # Nothing listens there: the CTI bridge must not touch a PBX another run owns.
        "HOTLINE_AMI_PORT": str(_free_port()),
        "HOTLINE_FASTAGI_PORT": str(_free_port()),
    }
    env.pop("HOTLINE_CONFIG", None)
    cli = [sys.executable, "-m", "agent_desktop.cli"]
    seeded = subprocess.run(
        [*cli, "seed", "--customers", "50", "--show-logins"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=root,
    )
    assert seeded.returncode == 0, seeded.stderr
    assert "agent1001" in seeded.stdout
    log = (root / "serve.log").open("w")
    process = subprocess.Popen(
        [*cli, "serve"], env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process, root / "serve.log")
        yield base, db_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    yield tab
    context.close()


def _log_in(page: Any, base: str, username: str, password: str) -> None:
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-submit")
    page.wait_for_load_state("domcontentloaded")


def _east_customer(db_path: Path) -> tuple[int, str]:
    with closing(sqlite3.connect(db_path)) as conn:
        row = conn.execute(
            "select c.id, c.name from customers c join contacts k on k.customer_id = c.id "
            "where c.region = '华东' order by c.id limit 1"
        ).fetchone()
    return int(row[0]), str(row[1])


def test_agent_logs_in_searches_and_opens_the_customer_360(
    server: tuple[str, Path], page: Any
) -> None:
    base, db_path = server
    page.goto(base + "/desktop")
    assert "/login" in page.url  # not logged in yet: sent to the login page
    assert page.locator("#login-submit").inner_text() == "登录"
    _log_in(page, base, "agent1001", DEMO_PASSWORD)
    assert page.url.endswith("/desktop")
    assert page.locator("#call-panel").is_visible()
    assert "坐席 李娜" in page.locator("#current-user").inner_text()

    customer_id, name = _east_customer(db_path)
    page.fill("input[name=q]", name[:2])
    page.press("input[name=q]", "Enter")
    page.wait_for_selector("#search-results")
    page.click(f'a[href="/customers/{customer_id}"]')
    page.wait_for_selector("#customer-360")
    assert page.locator("h1").first.inner_text().startswith(name)
    first_number = page.locator(".phones .number").first
    assert "****" in first_number.inner_text()
    page.locator(".phones .reveal").first.click()
    page.wait_for_selector(".phones .number.revealed")
    assert "*" not in page.locator(".phones .number.revealed").first.inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "desktop_customer_360.png"), full_page=True)

    page.click("#lang-en")
    page.wait_for_selector("#customer-360")
    assert "Change history" in page.content()
    page.click("#lang-zh")
    page.click("#logout")
    page.wait_for_url("**/login")


def test_three_wrong_passwords_lock_the_account(server: tuple[str, Path], page: Any) -> None:
    base, _db = server
    for _ in range(2):
        _log_in(page, base, "agent1002", "wrong-password")
        assert page.locator("#login-error").inner_text().strip() == "用户名或密码错误。"
    _log_in(page, base, "agent1002", "wrong-password")
    locked = page.locator("#login-error").inner_text()
    assert "密码连续输错3次，账户已锁定" in locked
    _log_in(page, base, "agent1002", DEMO_PASSWORD)  # the right password is refused now
    assert "账户已锁定" in page.locator("#login-error").inner_text()
    assert "/login" in page.url
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "login_locked.png"))


def test_another_regions_customer_is_not_found(server: tuple[str, Path], page: Any) -> None:
    base, db_path = server
    with closing(sqlite3.connect(db_path)) as conn:
        (other,) = conn.execute(
            "select id from customers where region <> '华北' order by id limit 1"
        ).fetchone()
    _log_in(page, base, "agent1003", DEMO_PASSWORD)  # agent1003 works for 华北
    response = page.goto(f"{base}/customers/{other}")
    assert response is not None and response.status == 404
    assert "未找到" in page.locator("#error h1").inner_text()
