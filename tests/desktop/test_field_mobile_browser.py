"""The technician's mobile page in real headless Chromium (Debian's, through Playwright) on a
phone-sized viewport (390×844, touch), against a real `hotline serve`: the link from the
dispatch SMS, accept, ETA, arrival with the browser's position, a note sent after the phone
was offline, a photo, the customer's signature, completion; expired and tampered links.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from test_desktop_browser import (
    ARTIFACTS,
    DEMO_PASSWORD,
    _east_customer,
    _free_port,
    _wait_healthy,
    browser,
)

from ticketing.field_links import FieldLinks

__all__ = ["browser"]
SECRET = "browser-test-field-link-secret"
PHONE = {"width": 390, "height": 844}
TECH_MOBILE = "+8613800551234"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("field-browser")
    db_path = root / "hotline.db"
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{db_path}",
        "HOTLINE_VAR_DIR": str(root / "var"),
        "HOTLINE_HTTP_PORT": str(port),
        "HOTLINE_AMI_PORT": str(_free_port()),
        "HOTLINE_FASTAGI_PORT": str(_free_port()),
        "HOTLINE_FIELD_LINK_SECRET": SECRET,
    }
    env.pop("HOTLINE_CONFIG", None)
    cli = [sys.executable, "-m", "agent_desktop.cli"]
    seeded = subprocess.run(
        [*cli, "seed", "--customers", "5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=root,
    )
    assert seeded.returncode == 0, seeded.stderr
    with closing(sqlite3.connect(db_path)) as conn:
        (tech,) = conn.execute("select id from users where username = 'tech01'").fetchone()
        conn.execute("insert into staff_mobiles (user_id, e164) values (?, ?)", (tech, TECH_MOBILE))
        conn.commit()
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


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        locale="zh-CN",
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
        geolocation={"latitude": 32.8901, "longitude": 115.8142, "accuracy": 15},
        permissions=["geolocation"],
    )
    yield context
    context.close()


def _dispatch(browser: Any, base: str, db_path: Path) -> tuple[int, str]:
    """The office dispatches through the JSON API; the link comes from the SMS outbox."""
    context = browser.new_context()
    api = context.request
    login = api.post(base + "/api/login", data={"username": "admin", "password": DEMO_PASSWORD})
    assert login.ok, login.text()
    headers = {"X-CSRF-Token": login.json()["csrf_token"], "Origin": base}

    def post(path: str, body: dict[str, Any]) -> Any:
        response = api.post(base + path, data=body, headers=headers)
        assert response.ok, response.text()
        return response.json()

    customer_id, _name = _east_customer(db_path)
    row = post("/api/tickets", {"customer_id": customer_id, "description": "液压系统漏油"})
    for action in ("submit", "start_review"):
        post(f"/api/tickets/{row['id']}/actions", {"action": action})
    post(f"/api/tickets/{row['id']}/actions", {"action": "approve", "office": "合肥服务站"})
    with closing(sqlite3.connect(db_path)) as conn:
        (tech,) = conn.execute("select id from users where username = 'tech01'").fetchone()
    order = post(f"/api/tickets/{row['id']}/dispatch", {"technician_id": tech})
    context.close()
    with closing(sqlite3.connect(db_path)) as conn:
        body, params = conn.execute(
            'select body, params from sms_outbox where "to" = ? order by id desc limit 1',
            (TECH_MOBILE,),
        ).fetchone()
    link = json.loads(params)["link"]
    assert link in body and link.startswith(base + "/m/")
    return int(order["id"]), link


def _state_is(page: Any, label: str) -> None:
    page.wait_for_function(
        "t => document.getElementById('order-state').textContent === t", arg=label, timeout=10000
    )


def _synced(page: Any) -> None:
    page.wait_for_function(
        "() => document.getElementById('sync-status').dataset.pending === '0'", timeout=10000
    )


def _sign(page: Any) -> None:
    box = page.locator("#signature-pad").bounding_box()
    page.mouse.move(box["x"] + 30, box["y"] + 120)
    page.mouse.down()
    for step in range(1, 25):
        page.mouse.move(box["x"] + 30 + step * 11, box["y"] + 120 - (step % 6) * 12)
    page.mouse.up()


def _photo(tmp: Path) -> Path:
    path = tmp / "现场.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (3000, 2000), (200, 80, 30)).save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue())
    return path


def test_the_technician_does_the_job_on_the_phone(
    server: tuple[str, Path], browser: Any, phone: Any, tmp_path: Path
) -> None:
    base, db_path = server
    order_id, link = _dispatch(browser, base, db_path)
    page = phone.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    response = page.goto(link)
    assert response is not None and response.status == 200
    assert page.locator("h1").inner_text().startswith("工单")
    assert "液压系统漏油" in page.locator(".facts").inner_text()
    # Laid out for the phone: nothing wider than the screen, thumb-sized buttons.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    accept = page.locator("#btn-accept")
    assert accept.is_visible() and accept.bounding_box()["height"] >= 48
    assert not page.locator("#btn-complete").is_visible()

    accept.tap()
    _state_is(page, "已接单")
    page.fill("#eta-time", "15:30")
    page.locator("#btn-eta").tap()
    _state_is(page, "在途")
    page.locator("#btn-arrive").tap()
    _state_is(page, "已到达")
    _synced(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "field_mobile_on_site.png"), full_page=True)

    phone.set_offline(True)  # a basement garage: the note waits in the phone
    page.fill("#note-text", "液压管接头松动")
    page.locator("#btn-note").tap()
    page.wait_for_function(
        "() => document.getElementById('sync-status').dataset.pending === '1'", timeout=5000
    )
    assert "待发送" in page.locator("#sync-status").inner_text()
    phone.set_offline(False)
    _synced(page)

    page.set_input_files("#photo-input", str(_photo(tmp_path)))
    page.wait_for_function("() => document.getElementById('photo-count').textContent === '1'")
    _synced(page)
    page.fill("#complete-text", "更换液压管接头，试车无漏油")
    page.locator("#btn-complete").tap()
    assert "请客户先签字" in page.locator("#error").inner_text()  # unsigned: not sent
    _sign(page)
    page.locator("#btn-complete").tap()
    _state_is(page, "已完工")
    _synced(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "field_mobile_done.png"), full_page=True)
    assert not [e for e in errors if "Content Security Policy" in e]

    with closing(sqlite3.connect(db_path)) as conn:
        state, parts = conn.execute(
            "select state, resolution from work_orders where id = ?", (order_id,)
        ).fetchone()
        files = conn.execute(
            "select kind, width, height from work_order_files where work_order_id = ? order by id",
            (order_id,),
        ).fetchall()
        notes = conn.execute(
            "select count(*) from field_actions where work_order_id = ? and kind = 'note'",
            (order_id,),
        ).fetchone()
        (arrival,) = conn.execute(
            "select detail from ticket_transitions where entity_id = ? and action = 'arrive'",
            (order_id,),
        ).fetchone()
    assert (state, parts) == ("done", "更换液压管接头，试车无漏油")
    assert [f[0] for f in files] == ["photo", "signature"] and max(files[0][1:]) <= 1600
    assert notes == (1,)
    assert json.loads(arrival)["position"]["lat"] == pytest.approx(32.8901)


def test_expired_and_tampered_links_are_refused(
    server: tuple[str, Path], browser: Any, phone: Any
) -> None:
    base, db_path = server
    order_id, link = _dispatch(browser, base, db_path)
    page = phone.new_page()
    token = link.rsplit("/", 1)[1]
    tampered = token[:5] + ("B" if token[5] != "B" else "C") + token[6:]
    response = page.goto(f"{base}/m/{tampered}")
    assert response is not None and response.status == 403
    assert page.locator("h1").inner_text() == "链接无效"
    with closing(sqlite3.connect(db_path)) as conn:
        (tech,) = conn.execute("select id from users where username = 'tech01'").fetchone()
    links = FieldLinks(SECRET, base, timedelta(hours=72))
    expired = links.url(order_id, tech, datetime.now(UTC) - timedelta(hours=73))
    response = page.goto(expired)
    assert response is not None and response.status == 410
    assert page.locator("h1").inner_text() == "链接已过期"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "field_mobile_expired.png"))
    with closing(sqlite3.connect(db_path)) as conn:
        (state,) = conn.execute(
            "select state from work_orders where id = ?", (order_id,)
        ).fetchone()
    assert state == "assigned"
