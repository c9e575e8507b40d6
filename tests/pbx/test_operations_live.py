"""Call-center operations through the real PBX: opening hours and holidays, overflow when
nobody is logged in, voicemail onto the callback list, position announcements, and the queue
callback (press 1, keep your place, the worker calls back: agent first, then the customer).

This module runs its own Asterisk instance ("pytest-ops", ports +18000): it changes the
hotline queue's settings through the admin API, which re-renders that PBX from the CRM.
The carrier tells the hours check what time to assume with an X-Hotline-Clock header, which
only a test-mode PBX passes on.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from live_server import LiveServer, live_server
from pbx_crm import demo_crm
from pbx_harness import (
    CALLER_MOBILE,
    PbxUnderTest,
    Sipp,
    pbx_test_settings,
    start_carrier_phone,
    start_phone,
)

pytestmark = [pytest.mark.pbx]
AGENTS = [
    {"username": f"agent{n}", "display_name": f"坐席{n}", "phone_interface": f"PJSIP/{n}"}
    for n in (1001, 1002, 1003)
]
SATURDAY = "2026-12-05T10:00:00+08:00"  # an ordinary weekend day
NATIONAL_DAY = "2026-10-01T10:00:00+08:00"  # a Thursday, public holiday
WORKING_SATURDAY = "2026-10-10T10:00:00+08:00"  # 调休: a Saturday made a working day
WEEKDAY = "2026-12-07T10:00:00+08:00"  # a Monday


@pytest.fixture(scope="module")
def ops_pbx(
    pbx_provisioned: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PbxUnderTest]:
    instance = PbxUnderTest(pbx_test_settings("pytest-ops", 18000), tmp_path_factory.mktemp("o"))
    instance.write_agents(AGENTS)
    instance.stop()
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def crm_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ops-crm") / "ops.db"

    async def make() -> None:
        async with demo_crm(path):
            pass

    asyncio.run(make())
    return path


@pytest.fixture(scope="module")
def server(
    ops_pbx: PbxUnderTest, crm_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    url = f"sqlite+aiosqlite:///{crm_path}"
    workdir = tmp_path_factory.mktemp("ops-server")
    with live_server(ops_pbx, url, workdir, callback_retry_seconds=3) as running:
        yield running


@pytest.fixture
def cleared(ops_pbx: PbxUnderTest) -> Iterator[None]:
    yield
    if ops_pbx.channels():
        ops_pbx.cli("channel request hangup all")


def _wait(predicate: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    return predicate()


def _rows(path: Path, sql: str, *args: Any) -> list[sqlite3.Row]:
    with sqlite3.connect(path, timeout=10) as conn:
        conn.row_factory = sqlite3.Row
        return list(conn.execute(sql, args))


def _queue(server: LiveServer, **values: Any) -> dict[str, Any]:
    session = server.login("admin")
    return server.patch("/api/admin/queues/hotline", session, values)


def _call(
    pbx: PbxUnderTest, workdir: Path, clock: str, hold_ms: int, press_1_at_ms: int | None = None
) -> Sipp:
    """An inbound call whose carrier sets the clock. It skips the IVR menu; with
    `press_1_at_ms` it keys 1 that long after the answer (in the queue), then holds hold_ms."""
    s = pbx.settings
    args = [
        f"127.0.0.1:{s.sip_port}", "-s", s.hotline_number, "-p", str(s.carrier_port),
        "-key", "caller", CALLER_MOBILE, "-key", "caller_name", CALLER_MOBILE,
        "-m", "1", "-d", str(hold_ms),
    ]  # fmt: skip
    replace = {
        "Subject: hotline test call": f"Subject: hotline test call\n      X-Hotline-Clock: {clock}"
    }
    if press_1_at_ms is not None:
        replace["<pause/>"] = f'<pause milliseconds="{press_1_at_ms}"/>'
        replace['<pause milliseconds="500"/>'] = "<pause/>"
    return Sipp(
        workdir / f"carrier-{time.monotonic_ns()}",
        "carrier_call.xml",
        args,
        dtmf="1" if press_1_at_ms is not None else "9",
        replace=replace,
    )


def _last_call(crm_path: Path, after_id: int) -> sqlite3.Row | None:
    rows = _rows(
        crm_path,
        "SELECT * FROM calls WHERE id > ? AND status = 'ended' AND direction = 'inbound'"
        " ORDER BY id",
        after_id,
    )
    return rows[-1] if rows else None


def _max_call_id(crm_path: Path) -> int:
    return int(_rows(crm_path, "SELECT coalesce(max(id), 0) AS m FROM calls")[0]["m"])


def _played(pbx: PbxUnderTest, prompt: str, since: int) -> bool:
    """Did Asterisk play this prompt (the verbose log of a test-mode PBX says so)?"""
    log = pbx.paths.log_host / "messages.log"
    if not log.is_file():
        return False
    with log.open("rb") as handle:
        handle.seek(since)
        return f"Playing '{prompt}.".encode() in handle.read()


def _log_size(pbx: PbxUnderTest) -> int:
    log = pbx.paths.log_host / "messages.log"
    return log.stat().st_size if log.is_file() else 0


@pytest.mark.usefixtures("cleared")
@pytest.mark.parametrize(
    ("clock", "closed_prompt"),
    [(SATURDAY, "hotline/closed"), (NATIONAL_DAY, "hotline/closed-holiday")],
)
def test_closed_hours_play_the_hours_then_take_a_voicemail_onto_the_callback_list(
    ops_pbx: PbxUnderTest,
    server: LiveServer,
    crm_path: Path,
    sipp_processes: list[Sipp],
    tmp_path: Path,
    clock: str,
    closed_prompt: str,
) -> None:
    reply = _queue(server, hours="mon-fri 09:00-17:00", holiday_calendar="cn")
    assert reply["pbx"]["status"] in ("reloaded", "unchanged"), reply["pbx"]
    before, log_at = _max_call_id(crm_path), _log_size(ops_pbx)
    call = _call(ops_pbx, tmp_path, clock, hold_ms=48000)
    sipp_processes.append(call)
    assert call.wait(120) == 0, call.errors()
    row = _wait(lambda: _last_call(crm_path, before))
    assert row is not None
    assert _wait(lambda: _played(ops_pbx, closed_prompt, log_at), 10)
    assert _played(ops_pbx, "hotline/hours-hotline", log_at)
    assert _played(ops_pbx, "hotline/voicemail", log_at)
    fresh = _wait(lambda: _rows(crm_path, "SELECT * FROM calls WHERE id = ?", row["id"])[0]
                  if _rows(crm_path, "SELECT voicemail_at FROM calls WHERE id = ?", row["id"])[0][0]
                  else None, 10)  # fmt: skip
    assert fresh is not None and fresh["routed"] == "closed" and fresh["queued_at"] is None
    assert fresh["recording_path"], "the voicemail is part of the call's recording"
    session = server.login("agent1001")
    listed = server.get_json("/api/calls/callbacks", session)
    entries = listed["calls"] if isinstance(listed, dict) else listed
    assert any(c["id"] == row["id"] for c in entries), entries


@pytest.mark.usefixtures("cleared")
def test_an_adjusted_working_saturday_is_open_and_the_caller_reaches_an_agent(
    ops_pbx: PbxUnderTest,
    server: LiveServer,
    crm_path: Path,
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    _queue(server, hours="mon-fri 09:00-17:00", holiday_calendar="cn")
    sipp_processes.append(start_phone(ops_pbx, "1001", 1000, tmp_path))
    before = _max_call_id(crm_path)
    call = _call(ops_pbx, tmp_path, WORKING_SATURDAY, hold_ms=22000)
    sipp_processes.append(call)
    assert call.wait(120) == 0, call.errors()
    row = _wait(lambda: _last_call(crm_path, before))
    assert row is not None and row["outcome"] == "answered", dict(row or {})
    assert row["routed"] is None and row["agent_interface"] == "PJSIP/1001"


@pytest.mark.usefixtures("cleared")
def test_nobody_logged_in_the_caller_does_not_join_and_overflows_to_voicemail(
    ops_pbx: PbxUnderTest,
    server: LiveServer,
    crm_path: Path,
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    _queue(server, hours="", overflow_target="voicemail")
    for n in (1001, 1002, 1003):
        ops_pbx.cli(f"queue pause member PJSIP/{n} queue hotline")
    try:
        before, log_at = _max_call_id(crm_path), _log_size(ops_pbx)
        call = _call(ops_pbx, tmp_path, WEEKDAY, hold_ms=22000)
        sipp_processes.append(call)
        assert call.wait(120) == 0, call.errors()
        row = _wait(lambda: _last_call(crm_path, before))
        assert row is not None
        assert _played(ops_pbx, "hotline/voicemail", log_at)
        fresh = _wait(
            lambda: (
                (r := _rows(crm_path, "SELECT * FROM calls WHERE id=?", row["id"])[0])
                and r["voicemail_at"]
                and r
            ),
            10,
        )
        assert fresh["routed"] == "overflow" and fresh["overflowed_from"] == "hotline"
        assert fresh["agent_id"] is None and fresh["ringing_at"] is None  # nobody was rung
    finally:
        for n in (1001, 1002, 1003):
            ops_pbx.cli(f"queue unpause member PJSIP/{n} queue hotline")


@pytest.mark.usefixtures("cleared")
def test_the_position_is_announced_in_mandarin_while_waiting(
    ops_pbx: PbxUnderTest,
    server: LiveServer,
    crm_path: Path,
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    _queue(server, hours="", announce_position=True, announce_frequency=15, overflow_target=None)
    log_at = _log_size(ops_pbx)
    # Nobody answers (the phones ring out), so the caller waits and hears the position.
    call = _call(ops_pbx, tmp_path, WEEKDAY, hold_ms=45000)
    sipp_processes.append(call)
    assert call.wait(120) == 0, call.errors()
    assert _wait(lambda: _played(ops_pbx, "hotline/queue-youarenext", log_at), 10)
    _queue(server, announce_position=False, announce_frequency=0)


def _jobs(crm_path: Path) -> list[sqlite3.Row]:
    return _rows(crm_path, "SELECT * FROM queue_callbacks ORDER BY id")


def _customer_leg(pbx: PbxUnderTest) -> str | None:
    """The callback's carrier channel while the customer talks (the inbound call is over)."""
    legs = [c for c in pbx.channels() if c.startswith("PJSIP/carrier-")]
    return legs[0] if legs else None


def _request_callback(pbx: PbxUnderTest, crm_path: Path, workdir: Path, sipps: list[Sipp]) -> Any:
    """A caller waits (only a phone that rings out is free), keys 1 and hangs up."""
    for n in (1001, 1002):
        pbx.cli(f"queue pause member PJSIP/{n} queue hotline")
    before = len(_jobs(crm_path))
    call = _call(pbx, workdir, WEEKDAY, hold_ms=8000, press_1_at_ms=30000)
    sipps.append(call)
    jobs = _wait(lambda: len(_jobs(crm_path)) > before and _jobs(crm_path), 90)
    assert jobs, "no callback was registered"
    call.wait(60)
    return jobs[-1]


def _answer_callback(pbx: PbxUnderTest, workdir: Path, sipps: list[Sipp]) -> Sipp:
    customer = start_carrier_phone(pbx, workdir, answer_after_ms=1500)
    sipps.append(customer)
    sipps.append(start_phone(pbx, "1001", 1000, workdir))
    pbx.cli("queue unpause member PJSIP/1001 queue hotline")
    return customer


def _invites(customer: Sipp) -> int:
    return sum(
        p.read_text(errors="replace").count("INVITE sip:")
        for p in customer.workdir.glob("*_messages.log")
    )


@pytest.fixture
def callback_queue(ops_pbx: PbxUnderTest, server: LiveServer) -> Iterator[None]:
    """The hotline queue offers the callback; every phone is back in the queue afterwards."""
    _queue(server, hours="", callback_enabled=True)
    yield
    for n in (1001, 1002):
        ops_pbx.cli(f"queue unpause member PJSIP/{n} queue hotline")


def _job_done(crm_path: Path, job_id: int, timeout: float = 30) -> Any:
    return _wait(
        lambda: (
            (r := next(j for j in _jobs(crm_path) if j["id"] == job_id))["state"] == "done" and r
        ),
        timeout,
    )


@pytest.mark.usefixtures("cleared", "callback_queue")
def test_press_1_keeps_the_place_and_the_worker_calls_back_agent_first_then_customer(
    ops_pbx: PbxUnderTest,
    server: LiveServer,
    crm_path: Path,
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    job = _request_callback(ops_pbx, crm_path, tmp_path, sipp_processes)
    assert job["state"] in ("waiting", "calling") and job["queue"] == "hotline"
    original = _rows(crm_path, "SELECT * FROM calls WHERE linkedid = ?", job["linkedid"])
    assert original and original[0]["routed"] == "callback"
    customer = _answer_callback(ops_pbx, tmp_path, sipp_processes)
    leg = _wait(lambda: _customer_leg(ops_pbx), 90)
    assert leg, ops_pbx.cli("core show channels")
    ops_pbx.cli(f"channel request hangup {leg}")  # the customer hangs up after talking
    done = _job_done(crm_path, job["id"])
    assert done, _jobs(crm_path)
    assert done["attempts"] == 1 and done["last_result"] == "ANSWER"
    closed = _rows(crm_path, "SELECT * FROM calls WHERE linkedid = ?", job["linkedid"])[0]
    assert closed["callback_done_at"]  # off the agents' callback list
    agent = _rows(crm_path, "SELECT id FROM users WHERE username = 'agent1001'")[0]["id"]
    # The callback is logged as a call of that customer, answered by the agent who got
    # its pop (ring-all: the other free phone rang and was popped too, then withdrawn).
    back = _wait(
        lambda: _rows(
            crm_path, "SELECT * FROM calls WHERE routed = 'callback_call' AND status = 'ended'"
        ),
        30,
    )
    assert back and back[-1]["agent_id"] == agent and back[-1]["outcome"] == "answered"
    assert back[-1]["customer_id"] == original[0]["customer_id"] is not None
    popped = _rows(
        crm_path, "SELECT agent_id FROM screen_pops WHERE linkedid = ?", back[-1]["linkedid"]
    )
    assert agent in [r["agent_id"] for r in popped]
    assert _invites(customer) == 1


@pytest.mark.usefixtures("cleared", "callback_queue")
def test_a_crash_mid_callback_does_not_call_the_customer_twice(
    ops_pbx: PbxUnderTest,
    server: LiveServer,
    crm_path: Path,
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    job = _request_callback(ops_pbx, crm_path, tmp_path, sipp_processes)
    customer = _answer_callback(ops_pbx, tmp_path, sipp_processes)
    leg = _wait(lambda: _customer_leg(ops_pbx), 90)
    assert leg
    server.process.kill()  # kill -9 while the agent talks with the customer
    server.process.wait()
    url = f"sqlite+aiosqlite:///{crm_path}"
    with live_server(ops_pbx, url, tmp_path, callback_retry_seconds=3):
        time.sleep(5)  # the restarted worker has looked at the open attempt (1 s ticks)
        assert _customer_leg(ops_pbx) == leg
        ops_pbx.cli(f"channel request hangup {leg}")
        done = _job_done(crm_path, job["id"])
        assert done, _jobs(crm_path)
        assert done["attempts"] == 1
        time.sleep(5)  # a second attempt would have been placed by now (retry 3 s)
        assert _invites(customer) == 1
