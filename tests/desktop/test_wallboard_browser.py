"""Real headless Chromium against a real `hotline serve` (the fixtures of
test_desktop_browser.py): the supervisor's wallboard shows the business tiles in Chinese and
follows a new request and its stage change without reloading the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_desktop_browser import (
    ARTIFACTS,
    DEMO_PASSWORD,
    _east_customer,
    _log_in,
    browser,
    page,
    server,
)

__all__ = ["browser", "page", "server"]


def _cell(page: Any, selector: str) -> int:
    text = page.locator(selector).first.inner_text().strip()
    return int(text) if text.isdigit() else 0


def _post(page: Any, base: str, path: str, body: dict[str, Any]) -> Any:
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    response = page.request.post(
        base + path, data=body, headers={"X-CSRF-Token": token, "Origin": base}
    )
    assert response.ok, response.text()
    return response.json()


def test_wallboard_follows_a_request_without_reload(server: tuple[str, Path], page: Any) -> None:
    base, db_path = server
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if m.type == "error" else None)
    _log_in(page, base, "supervisor", DEMO_PASSWORD)
    page.goto(base + "/wallboard")
    page.wait_for_selector('#wb-status[data-state="open"]')
    page.wait_for_selector('#wb-headline [data-figure="open_requests"] .value')
    headline = page.locator("#wb-headline").inner_text()
    assert "未完成的服务请求" in headline and "超时未派工" in headline
    assert "今日应回访" in headline and "话后小结中的坐席" in headline
    assert "技术科审核中" in page.locator("#wb-stages thead").inner_text()
    before = _cell(page, '#wb-headline [data-figure="open_requests"] .value')
    page.evaluate("window.__notReloaded = true")

    customer_id, _name = _east_customer(db_path)
    row = _post(page, base, "/api/tickets", {"customer_id": customer_id, "description": "异响"})
    page.wait_for_function(
        "n => document.querySelector('#wb-headline [data-figure=\"open_requests\"] .value')"
        ".textContent === String(n)",
        arg=before + 1,
        timeout=5000,
    )
    east = '#wb-stages tbody tr[data-region="华东"]'
    new_before = _cell(page, f'{east} td[data-stage="new"]')
    submitted_before = _cell(page, f'{east} td[data-stage="submitted"]')
    _post(page, base, f"/api/tickets/{row['id']}/actions", {"action": "submit"})
    page.wait_for_function(
        "([sel, n]) => document.querySelector(sel).textContent === String(n)",
        arg=[f'{east} td[data-stage="submitted"]', submitted_before + 1],
        timeout=5000,
    )
    assert _cell(page, f'{east} td[data-stage="new"]') == new_before - 1
    assert page.evaluate("window.__notReloaded") is True  # pushed, not reloaded
    assert not [m for m in refused if "Content Security Policy" in m]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "wallboard_business.png"), full_page=True)
