"""Real headless Chromium (Debian's, through Playwright) on the ticketing pages of a real
`hotline serve`: the office supervisor's dispatch board (one-click assign) and the reports
page with its charts. Screenshots go to var/artifacts/ for people to look at.

No PBX is needed: the server's AMI and FastAGI ports point where nothing listens. Three weeks
of history are made beforehand through the ticketing services with a moving clock, so the
report has trends, per-region bars, scores and SLA breaches to draw.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from crm_core.db import Database
from crm_core.models import Customer, User
from crm_core.settings import Settings
from crm_core.users import create_user
from ticketing.context import TicketingContext
from ticketing.field import set_mobile
from ticketing.follow_ups import FollowUpService
from ticketing.journal import Actor
from ticketing.models import FollowUp
from ticketing.requests import ServiceRequestService
from ticketing.sla import check_sla
from ticketing.states import RequestAction, WorkOrderAction
from ticketing.work_orders import FieldReport, WorkOrderService

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
PASSWORD = "hotline-demo"
OFFICES = {"华东": "合肥服务站", "华北": "北京服务站", "华南": "广州服务站", "华中": "武汉服务站"}
TECHS = {
    "华东": ["服务工程师 周强", "服务工程师 刘洋"],
    "华北": ["服务工程师 赵磊"],
    "华南": ["服务工程师 黄涛"],
    "华中": ["服务工程师 孙杰"],
}
PROBLEMS = ["刹车异响", "发动机无法启动", "液压系统漏油", "空调不制冷", "仪表盘报警", "取力器异响"]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian chromium missing: scripts/system-packages.sh"
)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def _staff(db: Database) -> dict[str, list[int]]:
    """An office supervisor and technicians per region (tech01 already works in 合肥)."""
    staff: dict[str, list[int]] = {}
    async with db.transaction() as session:
        demo_tech = (await session.scalars(select(User.id).where(User.username == "tech01"))).one()
    await set_mobile(TicketingContext(db), demo_tech, "13800550999")
    for n, (region, names) in enumerate(TECHS.items()):
        await create_user(
            db,
            {"username": f"office{n}", "display_name": f"{OFFICES[region]}主管",
             "role": "supervisor", "office": OFFICES[region], "region": region},
            password=PASSWORD,
        )  # fmt: skip
        staff[region] = []
        for m, name in enumerate(names):
            row = await create_user(
                db,
                {"username": f"field{n}{m}", "display_name": name, "role": "technician",
                 "office": OFFICES[region], "region": region},
                password=PASSWORD,
            )  # fmt: skip
            staff[region].append(row.id)
            await set_mobile(TicketingContext(db), row.id, f"1380055{n}{m:03d}")
    return staff


async def _history(db: Database, now: datetime) -> None:
    """21 days of requests through the real services, each step at its own moment."""
    staff = await _staff(db)
    async with db.transaction() as session:
        customers = list((await session.scalars(select(Customer.id).limit(40))).all())
        agent = (await session.scalars(select(User.id).where(User.role == "agent"))).first()
        reviewer = (
            await session.scalars(select(User.id).where(User.username == "supervisor"))
        ).one()
    assert agent is not None
    clock = Clock(now - timedelta(days=21))
    ctx = TicketingContext(db, clock=clock)
    requests, orders, follow_ups = (
        ServiceRequestService(ctx), WorkOrderService(ctx), FollowUpService(ctx)
    )  # fmt: skip
    rng = random.Random(6)
    regions = list(OFFICES)
    for i in range(63):
        region = regions[rng.choices(range(4), weights=(5, 2, 2, 1))[0]]
        clock.now = now - timedelta(days=21) + timedelta(hours=i * 8 + rng.uniform(0, 4))
        if i >= 60:  # three for 合肥服务站's board, approved an hour ago
            region, clock.now = "华东", now - timedelta(hours=1, minutes=i)
        row = await requests.create(
            {"customer_id": customers[i % len(customers)], "description": rng.choice(PROBLEMS),
             "priority": rng.choice(["urgent", "high", "normal", "normal"]), "region": region},
            Actor.user(agent),
        )  # fmt: skip
        for action in (RequestAction.SUBMIT, RequestAction.START_REVIEW):
            await requests.act(row.id, action, Actor.user(reviewer))
        clock.now += timedelta(hours=rng.uniform(0.2, 2))
        await requests.act(
            row.id, RequestAction.APPROVE, Actor.user(reviewer), office=OFFICES[region]
        )
        if clock.now > now - timedelta(days=1):
            continue  # the last day's requests wait on the dispatch boards
        clock.now += timedelta(hours=rng.uniform(0.5, 9 if region != "华中" else 20))
        order = await orders.dispatch(row.id, rng.choice(staff[region]), Actor.user(reviewer))
        tech = Actor.user(order.technician_id)
        clock.now += timedelta(hours=rng.uniform(0.1, 1.5))
        await orders.report(order.id, FieldReport(WorkOrderAction.ACCEPT, None, None), tech)
        clock.now += timedelta(hours=rng.uniform(3, 40))
        report = FieldReport(WorkOrderAction.COMPLETE, None, "已修复")
        await orders.report(order.id, report, tech)
        clock.now += timedelta(hours=rng.uniform(2, 30))
        async with db.transaction() as session:
            follow_up = (
                await session.scalars(select(FollowUp.id).where(FollowUp.request_id == row.id))
            ).one()
        score = rng.choices([5, 4, 3, 2], weights=(6, 3, 1, 1 if region == "华中" else 0))[0]
        await follow_ups.record_result(follow_up, score, Actor.user(agent), "回访完成")
    clock.now = now
    await check_sla(ctx)


def _prepare(db_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{db_path}")

    async def run() -> None:
        db = Database.open(settings)
        try:
            await _history(db, datetime.now(UTC))
        finally:
            await db.close()

    asyncio.run(run())


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    root = tmp_path_factory.mktemp("tickets-browser")
    db_path = root / "hotline.db"
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")},
        "DATABASE_URL": f"sqlite+aiosqlite:///{db_path}",
        "HOTLINE_VAR_DIR": str(root / "var"),
        "HOTLINE_HTTP_PORT": str(port),
        "HOTLINE_AMI_PORT": str(_free_port()),  # nothing listens: no PBX of another run
        "HOTLINE_FASTAGI_PORT": str(_free_port()),
    }
    cli = [sys.executable, "-m", "agent_desktop.cli"]
    seeded = subprocess.run(
        [*cli, "seed", "--customers", "40"],
        env=env, capture_output=True, text=True, timeout=300, check=False, cwd=root,
    )  # fmt: skip
    assert seeded.returncode == 0, seeded.stderr
    _prepare(db_path)
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


def _log_in(page: Any, base: str, username: str) -> None:
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_load_state("domcontentloaded")


def _query(db_path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db_path)) as conn:
        return list(conn.execute(sql, args).fetchall())


def test_office_supervisor_assigns_with_one_click(server: tuple[str, Path], page: Any) -> None:
    base, db_path = server
    _log_in(page, base, "office0")  # 合肥服务站's supervisor
    page.click('a[href="/tickets/dispatch"]')
    page.wait_for_selector("#dispatch-board")
    assert "派工台" in page.locator("h1").first.inner_text()
    waiting = page.locator("#waiting tbody tr")
    before = waiting.count()
    assert before >= 1
    first_row = waiting.first
    request_id = int(first_row.get_attribute("id").removeprefix("waiting-"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "tickets_dispatch_board.png"), full_page=True)

    button = first_row.locator("button[data-assign]").first
    technician = int(button.get_attribute("data-technician"))
    button.click()
    page.wait_for_selector(f"#waiting-{request_id}", state="detached")
    assert "已派工给" in page.locator("#dispatch-flash").inner_text()
    page.screenshot(path=str(ARTIFACTS / "tickets_dispatch_assigned.png"), full_page=True)
    rows = _query(
        db_path,
        "select r.state, w.technician_id, w.state from service_requests r "
        "join work_orders w on w.request_id = r.id where r.id = ?",
        request_id,
    )
    assert rows == [("in_field", technician, "assigned")]

    page.goto(f"{base}/tickets/{request_id}")
    page.wait_for_selector("#timeline")
    assert "现场服务中" in page.locator("#ticket-state").inner_text()
    assert page.locator(".timeline .entry").count() >= 6
    # The work-order SMS is stored with the dispatch, in the same transaction.
    assert page.locator(".timeline .entry-sms_out").count() == 1
    page.screenshot(path=str(ARTIFACTS / "tickets_request_timeline.png"), full_page=True)


def test_reports_page_shows_charts_and_tables(server: tuple[str, Path], page: Any) -> None:
    base, _db_path = server
    _log_in(page, base, "supervisor")
    page.click('a[href="/reports"]')
    page.wait_for_selector("#report-charts svg")
    assert page.locator("h1").first.inner_text() == "服务统计报表"
    assert page.locator("#report-charts svg.chart").count() == 7
    assert page.locator("#chart-trend-created polyline").count() == 4  # one line per region
    assert page.locator("#chart-region-hours rect.bar").count() >= 4
    assert page.locator("#chart-region-satisfaction rect.bar").count() == 4
    box = page.locator("#chart-trend-created").bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    assert "华东" in page.locator("#report-regions").inner_text()
    with page.expect_download() as download:
        page.click("#csv-export")
    csv = Path(download.value.path()).read_text(encoding="utf-8")
    assert csv.startswith("section,") and "satisfaction_by_region,华东" in csv
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "tickets_reports.png"), full_page=True)
