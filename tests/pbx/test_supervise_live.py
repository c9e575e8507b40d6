"""Supervisor listen / whisper / barge through the real server, PBX and three SIP legs.

This module runs its own Asterisk instance ("pytest-spy", ports +12000). The caller, the
agent and the supervisor are SIPp for the signalling and RTP probes (rtp_probe.py) for the
media: each talks in its own pure tone (caller 440 Hz, agent 1000 Hz, supervisor 2000 Hz),
so the audio each one receives tells whose voice reached whom.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ami_tap import AmiTap
from live_server import LiveServer, live_server
from pbx_harness import CALLER_MOBILE, PbxUnderTest, Sipp, pbx_test_settings
from rtp_probe import RtpProbe, free_probe_port
from sqlalchemy import update

from crm_core import migrate
from crm_core.customers import CustomerService
from crm_core.db import Database
from crm_core.models import User
from crm_core.settings import Settings
from crm_core.users import DEMO_PASSWORD, ensure_demo_users

pytestmark = [pytest.mark.pbx]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]

CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ = 440.0, 1000.0, 2000.0
SUPERVISOR_PHONE = "PJSIP/1009"
AGENTS = [
    {"username": "agent1001", "display_name": "坐席 李娜", "phone_interface": "PJSIP/1001"},
    # The supervisor's desk phone: in no queue, rung only to listen in.
    {"username": "supervisor", "display_name": "主管 周敏", "phone_interface": SUPERVISOR_PHONE,
     "queues": []},
]  # fmt: skip
HEARD = 1500.0  # a tone that got through: its level on the 16-bit scale (sent at 6000)
SILENT = 150.0  # a tone that did not: quantisation noise stays far below this
NO_MEDIA = '<log message="media: the test RTP probe"/>'


@pytest.fixture(scope="module")
def spy_pbx(
    pbx_provisioned: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PbxUnderTest]:
    instance = PbxUnderTest(pbx_test_settings("pytest-spy", 12000), tmp_path_factory.mktemp("s"))
    # SIPp's own media ports clear of this instance's RTP range and of the other instances'.
    Sipp._media_port = max(Sipp._media_port, 36000)
    instance.write_agents(AGENTS)
    instance.stop()  # a leftover from an interrupted run
    instance.start()
    yield instance
    instance.stop()


async def _prepare(url: str) -> None:
    settings = Settings(database_url=url)
    await asyncio.to_thread(migrate.upgrade, settings)
    db = Database.open(settings)
    try:
        await ensure_demo_users(db)
        await CustomerService(db).create(
            {"name": "阜阳顺达物流有限公司", "code": "C0000001", "region": "华东"}, [CALLER_MOBILE]
        )
        async with db.transaction() as session:
            await session.execute(
                update(User)
                .where(User.username == "supervisor")
                .values(phone_interface=SUPERVISOR_PHONE)
            )
    finally:
        await db.close()


@pytest.fixture(scope="module")
def server(spy_pbx: PbxUnderTest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("spy-server")
    url = f"sqlite+aiosqlite:///{workdir / 'spy.db'}"
    asyncio.run(_prepare(url))
    with live_server(spy_pbx, url, workdir) as running:
        yield running


@pytest.fixture
def ami(spy_pbx: PbxUnderTest, tmp_path: Path) -> Iterator[AmiTap]:
    tap = AmiTap(spy_pbx.settings, tmp_path / "ami.txt")
    yield tap
    tap.close()
    if spy_pbx.channels():
        spy_pbx.cli("channel request hangup all")


@pytest.fixture
def probes() -> Iterator[dict[str, RtpProbe]]:
    port = 36500
    made = {}
    for name, hz in (("caller", CALLER_HZ), ("agent", AGENT_HZ), ("supervisor", SUPERVISOR_HZ)):
        port = free_probe_port(port)
        made[name] = RtpProbe(port, hz)
        port += 2
    yield made
    for probe in made.values():
        probe.close()


def _sipp(workdir: Path, scenario: str, args: list[str], probe: RtpProbe, **more: str) -> Sipp:
    replace = {"m=audio [media_port]": f"m=audio {probe.port}", **more}
    return Sipp(workdir, scenario, args, replace=replace)


def _phone(pbx: PbxUnderTest, endpoint: str, probe: RtpProbe, workdir: Path) -> Sipp:
    args = ["-p", str(pbx.phone_port(endpoint))]
    audio = '<exec play_pcap_audio="pcap/audio.pcap"/>'
    return _sipp(
        workdir / f"phone-{endpoint}", "phone_answer.xml", args, probe, **{audio: NO_MEDIA}
    )


def _carrier(pbx: PbxUnderTest, probe: RtpProbe, workdir: Path) -> Sipp:
    s = pbx.settings
    args = [
        f"127.0.0.1:{s.sip_port}", "-s", s.hotline_number, "-p", str(s.carrier_port),
        "-key", "caller", CALLER_MOBILE, "-key", "caller_name", CALLER_MOBILE,
        "-m", "1", "-d", "120000",
    ]  # fmt: skip
    media = {
        '<exec play_pcap_audio="pcap/audio.pcap"/>': NO_MEDIA,
        '<exec play_pcap_audio="pcap/dtmf.pcap"/>': NO_MEDIA,
    }
    return _sipp(workdir / "carrier", "carrier_call.xml", args, probe, **media)


def _rows(server: LiveServer, query: str, *args: Any) -> list[sqlite3.Row]:
    path = server.settings.database_url.split("///", 1)[1]
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        return list(conn.execute(query, args))


def _until(predicate: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what}")


def _levels(probe: RtpProbe, since: float) -> dict[str, float]:
    return {
        name: round(probe.level_since(since, hz))
        for name, hz in (("caller", CALLER_HZ), ("agent", AGENT_HZ), ("supervisor", SUPERVISOR_HZ))
    }


def _spy_once(
    server: LiveServer,
    ami: AmiTap,
    probes: dict[str, RtpProbe],
    linkedid: str,
    mode: str,
    click: Callable[[], None] | None = None,
) -> dict[str, dict[str, float]]:
    """One session, through the API or by `click` on the wallboard: the supervisor's phone
    rings into ChanSpy, answers, listens ~3 s and is hung up. Returns the tone levels each
    probe received while the supervisor was on."""
    mark = ami.mark()
    if click is None:
        request_id = f"live-{mode}-{time.monotonic_ns()}"
        body = {"mode": mode, "request_id": request_id}
        started = server.post(f"/api/calls/{linkedid}/spy", server.login("supervisor"), body)
        assert started["new"] and started["spied_channel"].startswith("PJSIP/1001-"), started
    else:
        click()
    answered = ami.wait_for(
        lambda e: (
            e.get("Event") == "OriginateResponse" and e.get("ActionID", "").startswith("spy:")
        ),
        30,
        mark,
    )
    assert answered["Response"] == "Success", answered
    request_id = answered["ActionID"].removeprefix("spy:")
    spy = ami.wait_event("ChanSpyStart", 10, mark)
    assert spy["SpyeeChannel"].startswith("PJSIP/1001-") and spy["SpyeeLinkedid"] == linkedid
    since = time.monotonic()
    # Three seconds of audio at the supervisor's phone (packets, not a timer, decide).
    _until(lambda: probes["supervisor"].packets_since(since) >= 150, "spy audio", 15)
    levels = {name: _levels(probe, since) for name, probe in probes.items()}
    ami.action("Hangup", Channel=answered["Channel"])
    ami.wait_event("Hangup", 10, mark, Uniqueid=f"spy-{request_id}")
    ended = _until(
        lambda: _rows(
            server,
            "select * from spy_sessions where action_id = ? and ended_at is not null",
            f"spy:{request_id}",
        ),
        "the session's end row",
    )[0]
    assert ended["mode"] == mode and ended["answered_at"] is not None
    audit = _rows(
        server,
        "select action, detail from audit_log where action in ('spy_start','spy_end') "
        "and object_id = ? order by id",
        linkedid,
    )
    end = [json.loads(r["detail"]) for r in audit if r["action"] == "spy_end"][-1]
    assert end["action_id"] == f"spy:{request_id}" and end["seconds"] >= 2.5, end
    print(f"{mode}: levels {levels}; listened {end['seconds']} s")
    return levels


def _wallboard_click(server: LiveServer) -> Callable[[], None]:
    """The supervisor's wallboard in headless Chromium: 监听 on the agent who is on the call."""

    def click() -> None:
        sync_api = pytest.importorskip("playwright.sync_api")
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            try:
                page = browser.new_context(locale="zh-CN").new_page()
                page.goto(server.base + "/login?next=/wallboard")
                page.fill("#username", "supervisor")
                page.fill("#password", DEMO_PASSWORD)
                page.click("#login-submit")
                page.wait_for_url("**/wallboard")
                page.locator("#wb-agents [data-spy-mode=listen]").first.click(timeout=15000)
                page.locator("#wb-spy[data-state=ok]").wait_for(timeout=15000)
                assert "振铃" in page.locator("#wb-spy").inner_text()
            finally:
                browser.close()

    return click


def test_supervisor_listens_whispers_and_barges_with_real_audio(
    spy_pbx: PbxUnderTest,
    server: LiveServer,
    ami: AmiTap,
    probes: dict[str, RtpProbe],
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    sipp_processes.append(_phone(spy_pbx, "1001", probes["agent"], tmp_path))
    sipp_processes.append(_phone(spy_pbx, "1009", probes["supervisor"], tmp_path))
    mark = ami.mark()
    sipp_processes.append(_carrier(spy_pbx, probes["caller"], tmp_path))
    connect = ami.wait_event("AgentConnect", 60, mark)
    linkedid = connect["Linkedid"]
    boss = server.login("supervisor")
    board = _until(
        lambda: [a for a in server.get_json("/api/wallboard", boss)["agents"] if a["linkedid"]],
        "the wallboard's agent on a call",
    )
    assert board[0]["linkedid"] == linkedid

    listen = _spy_once(server, ami, probes, linkedid, "listen", _wallboard_click(server))
    # The supervisor hears both sides of the call; nobody hears the supervisor.
    assert listen["supervisor"]["caller"] > HEARD and listen["supervisor"]["agent"] > HEARD
    assert listen["agent"]["supervisor"] < SILENT and listen["caller"]["supervisor"] < SILENT

    whisper = _spy_once(server, ami, probes, linkedid, "whisper")
    assert whisper["supervisor"]["caller"] > HEARD and whisper["supervisor"]["agent"] > HEARD
    assert whisper["agent"]["supervisor"] > HEARD  # the agent hears the coach...
    assert whisper["caller"]["supervisor"] < SILENT  # ...the caller does not

    barge = _spy_once(server, ami, probes, linkedid, "barge")
    assert barge["agent"]["supervisor"] > HEARD and barge["caller"]["supervisor"] > HEARD
    # The call itself went on throughout: the caller still hears the agent.
    assert barge["caller"]["agent"] > HEARD and barge["agent"]["caller"] > HEARD

    rows = _rows(server, "select mode from spy_sessions where linkedid = ? order by id", linkedid)
    assert [r["mode"] for r in rows] == ["listen", "whisper", "barge"]
    starts = _rows(server, "select user_id from audit_log where action = 'spy_start'")
    supervisor_id = _rows(server, "select id from users where username = 'supervisor'")[0]["id"]
    assert [r["user_id"] for r in starts] == [supervisor_id] * 3
