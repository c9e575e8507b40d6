"""Real headless Chromium (Debian's, through Playwright) on the review page of a real
`hotline serve`: a supervisor opens a recording, plays it, seeks on the waveform, changes
the speed and submits a QA score with a comment pinned to a time."""

from __future__ import annotations

import asyncio
import json
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rec_audio import write_wav

from crm_core.db import Database
from crm_core.settings import Settings
from cti.models import Call
from recordings import qa
from recordings.ingest import RecordingIngest
from recordings.meta import CallMeta
from recordings.storage import Storage

playwright_sync = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "artifacts"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian chromium missing: scripts/system-packages.sh"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _seed_recording(root: Path, db_path: Path) -> int:
    with closing(sqlite3.connect(db_path)) as conn:
        customer = conn.execute("select id from customers where region = '华东' limit 1").fetchone()
        agent = conn.execute("select id from users where username = 'agent1001'").fetchone()
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{db_path}", recordings_dir=str(root / "rec-store")
    )

    async def run() -> int:
        db = Database.open(settings)
        try:
            for name, weight in (("服务态度", 40), ("问题解决", 60)):
                await qa.save_criterion(db, {"name": name, "weight": weight}, None)
            wav = write_wav(root / "spool" / "20261125-010000-in-1795570000.0.wav", 12.0)
            ended = datetime.now(UTC)
            async with db.transaction() as session:
                call = Call(
                    server="main", linkedid="1795570000.0", direction="inbound",
                    number="13905580000", customer_id=customer[0], agent_id=agent[0],
                    queue="hotline", entered_at=ended - timedelta(seconds=20),
                    answered_at=ended - timedelta(seconds=12), ended_at=ended,
                    talk_seconds=12.0, status="ended", outcome="answered",
                    recording_path=str(wav),  # as MIXMONITOR_FILENAME gives the call log
                )  # fmt: skip
                session.add(call)
            meta = CallMeta(
                source=wav, server="main", linkedid="1795570000.0", call_id=call.id,
                customer_id=customer[0],
                agent_id=agent[0], queue="hotline", direction="inbound", talk_seconds=12.0,
                ended_at=ended, from_call_log=True,
            )  # fmt: skip
            row = await RecordingIngest(db, Storage(root / "rec-store"), settle_seconds=0.1).ingest(
                meta
            )
            assert row is not None and row.state == "complete"
            return row.id
        finally:
            await db.close()

    return asyncio.run(run())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, int]]:
    root = tmp_path_factory.mktemp("recbrowser")
    db_path = root / "hotline.db"
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{db_path}",
        "HOTLINE_VAR_DIR": str(root / "var"),
        "HOTLINE_RECORDINGS_DIR": str(root / "rec-store"),
        "HOTLINE_HTTP_PORT": str(port),
        "HOTLINE_AMI_PORT": str(_free_port()),
        "HOTLINE_FASTAGI_PORT": str(_free_port()),
    }
    env.pop("HOTLINE_CONFIG", None)
    cli = [sys.executable, "-m", "agent_desktop.cli"]
    seeded = subprocess.run(
        [*cli, "seed", "--customers", "20"], env=env, capture_output=True, text=True,
        timeout=300, check=False, cwd=root,
    )  # fmt: skip
    assert seeded.returncode == 0, seeded.stderr
    recording_id = _seed_recording(root, db_path)
    log = (root / "serve.log").open("w")
    process = subprocess.Popen(
        [*cli, "serve"], env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (root / "serve.log").read_text()
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "hotline serve did not become healthy"
                time.sleep(0.2)
        yield base, db_path, recording_id
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_supervisor_plays_seeks_and_scores_a_recording(server: tuple[str, Path, int]) -> None:
    base, db_path, recording_id = server
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_context(
                locale="zh-CN", viewport={"width": 1280, "height": 900}
            ).new_page()
            _review(page, base, recording_id)
        finally:
            browser.close()
    with closing(sqlite3.connect(db_path)) as conn:
        review = conn.execute("select score, comments, version from qa_reviews").fetchone()
        played = conn.execute(
            "select count(*) from audit_log where action = 'recording_played' and object_id = ?",
            (str(recording_id),),
        ).fetchone()
    assert review[0] == 84.0 and review[2] == 1
    (comment,) = json.loads(review[1])
    assert comment["text"] == "开场问候规范" and 8.5 <= comment["at"] <= 12  # after the seek
    assert played[0] >= 1


def _wait(page: Any, expression: str, timeout: float = 20) -> None:
    """Poll with evaluate: wait_for_function compiles strings in the page, which our CSP
    (no unsafe-eval) rightly refuses."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"never true: {expression}"
        time.sleep(0.1)


def _review(page: Any, base: str, recording_id: int) -> None:
    page.goto(base + "/login")
    page.fill("#username", "supervisor")
    page.fill("#password", "hotline-demo")
    page.click("#login-submit")
    page.wait_for_load_state("domcontentloaded")
    page.goto(base + "/recordings")
    page.locator(f'#rec-list tbody tr[data-id="{recording_id}"]').click()
    page.wait_for_selector("#rec-player:not([hidden])")
    _wait(page, "document.getElementById('rec-audio').readyState >= 1")
    page.evaluate("document.getElementById('rec-audio').play()")
    _wait(page, "document.getElementById('rec-audio').currentTime > 0.3")
    duration = page.evaluate("document.getElementById('rec-audio').duration")
    assert abs(duration - 12.0) < 0.2
    box = page.locator("#rec-wave").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2)
    _wait(page, "document.getElementById('rec-audio').currentTime >= 8.5")
    assert page.evaluate("document.getElementById('rec-audio').currentTime") < 11
    page.select_option("#rec-speed", "1.5")
    assert page.evaluate("document.getElementById('rec-audio').playbackRate") == 1.5
    inputs = page.locator("#qa-criteria input")
    inputs.nth(0).fill("90")
    inputs.nth(1).fill("80")
    page.fill("#qa-comment-text", "开场问候规范")
    page.click("#qa-add-comment")
    page.click("#qa-submit")
    page.wait_for_selector("#qa-result:has-text('84')")
    page.wait_for_selector(".rec-review")  # the page reloads the recording with its review
    assert page.locator(".rec-review").count() == 1
    assert "84" in page.locator(".rec-review").inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "recordings-review.png"), full_page=True)


def test_the_agent_plays_the_call_from_the_customer_page(server: tuple[str, Path, int]) -> None:
    """The recording is playable where the call appears: the customer 360's call history."""
    base, db_path, recording_id = server
    with closing(sqlite3.connect(db_path)) as conn:
        (customer,) = conn.execute(
            "select customer_id from recordings where id = ?", (recording_id,)
        ).fetchone()
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_context(locale="zh-CN").new_page()
            page.goto(base + "/login")
            page.fill("#username", "agent1001")  # took the call
            page.fill("#password", "hotline-demo")
            page.click("#login-submit")
            page.wait_for_load_state("domcontentloaded")
            page.goto(f"{base}/customers/{customer}")
            audio = page.locator("#customer-calls audio.call-audio")
            assert audio.count() == 1
            assert "呼入" in page.locator("#customer-calls").inner_text()
            page.evaluate("document.querySelector('#customer-calls audio').play()")
            _wait(page, "document.querySelector('#customer-calls audio').currentTime > 0.3")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "customer-360-calls.png"), full_page=True)
        finally:
            browser.close()


def test_the_agent_plays_an_unprocessed_call_from_the_desktop(
    server: tuple[str, Path, int],
) -> None:
    """The desktop's "my unprocessed calls" has a play button: the server finds the call's
    recording (/api/recordings/by-call), and it plays in place, in the list."""
    base, _db_path, _recording_id = server
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_context(locale="zh-CN").new_page()
            page.goto(base + "/login")
            page.fill("#username", "agent1001")  # took the call and has not wrapped it up
            page.fill("#password", "hotline-demo")
            page.click("#login-submit")
            page.wait_for_url("**/desktop")
            button = page.locator("#unprocessed-list button.play-recording")
            button.wait_for(timeout=15_000)
            assert "播放录音" in button.inner_text()
            button.click()
            page.locator("#unprocessed-list audio").wait_for(timeout=15_000)
            _wait(page, "document.querySelector('#unprocessed-list audio').currentTime > 0.3")
        finally:
            browser.close()
