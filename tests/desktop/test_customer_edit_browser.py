"""Real headless Chromium against a real `hotline serve` (the fixtures of
test_desktop_browser.py): an agent edits a customer's phone number on the 360 page."""

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


def test_agent_edits_a_phone_on_the_360_and_sees_the_normalised_number(
    server: tuple[str, Path], page: Any
) -> None:
    base, db_path = server
    _log_in(page, base, "agent1001", DEMO_PASSWORD)
    customer_id, _name = _east_customer(db_path)
    page.goto(f"{base}/customers/{customer_id}")
    page.wait_for_selector("#customer-360")
    item = page.locator(".phones li").first
    number = item.locator(".number")
    number_id = number.get_attribute("id")
    assert "*" in number.inner_text()  # agents see numbers masked

    item.locator("details.edit summary").click()  # 编辑
    assert item.locator("details.edit summary").inner_text() == "编辑"
    form = item.locator("form")
    form.locator("input[name=raw]").fill(" +86 139-0558-6677 ")
    form.locator("select[name=label]").select_option("mobile")
    form.locator("button[type=submit]").click()  # 保存
    page.wait_for_selector(f"#{number_id}.saved")
    assert page.locator(f"#{number_id}").inner_text() == "139 0558 6677"
    assert form.locator("[data-form-error]").inner_text() == ""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "customer_phone_edited.png"), full_page=True)

    page.reload()
    page.wait_for_selector("#customer-360")
    assert page.locator(f"#{number_id}").inner_text() == "139****6677"  # masked again
    latest = page.locator("#changes tbody tr").first.inner_text()
    assert "修改" in latest and "李娜" in latest
    page.locator("#edit-customer summary").click()
    assert page.locator("#edit-customer input[name=name]").input_value() == _name
    page.screenshot(path=str(ARTIFACTS / "customer_edit_form.png"), full_page=True)
