"""Wrap-up (after-call work) on the real PBX: Asterisk offers no call to an agent in wrap-up,
the server's countdown matches it, and the one extension keeps the agent paused.

This module runs its own Asterisk instance ("pytest-wrapup", ports +10000), configured from
its own CRM (the queues' wrap-up time is a CRM setting rendered into queues.conf), with its own
`hotline serve`, SIPp carrier and SIPp agent phones 1001 and 1002.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ami_tap import AmiTap, Event
from live_server import LiveServer, live_server
from pbx_crm import demo_crm
from pbx_harness import (
    CALLER_MOBILE,
    PbxUnderTest,
    Sipp,
    pbx_test_settings,
    start_phone,
)
from sqlalchemy import update

from crm_core.models import CallQueue, User
from cti.agent_state import WRAPUP_REASON

pytestmark = [pytest.mark.pbx]

WRAPUP_S = 30  # long enough for two more calls to reach the queue (greeting, lookup, menu: 7 s)
FIRST, SECOND = "PJSIP/1001", "PJSIP/1002"


async def _crm(path: Path) -> str:
    async with demo_crm(path) as crm:
        async with crm["db"].transaction() as session:
            await session.execute(update(CallQueue).values(wrapup_seconds=WRAPUP_S))
            # Two phones in the queues, no third one ringing into nothing.
            await session.execute(
                update(User).where(User.username == "agent1003").values(phone_interface=None)
            )
        return str(crm["url"])


@pytest.fixture(scope="module")
def wrapup_pbx(
    pbx_provisioned: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PbxUnderTest]:
    workdir = tmp_path_factory.mktemp("wrapup")
    url = asyncio.run(_crm(workdir / "crm.db"))
    settings = pbx_test_settings("pytest-wrapup", 10000).replace(database_url=url)
    Sipp._media_port = max(Sipp._media_port, settings.rtp_end_port + 100)
    instance = PbxUnderTest(settings, workdir)
    instance.stop()  # a leftover from an interrupted run
    # No --agents file: phones, queues and their wrapuptime come from the CRM.
    started = instance.hotline("pbx", "start")
    assert started.returncode == 0, started.stdout + started.stderr
    assert f"wrapuptime = {WRAPUP_S}" in (instance.paths.etc_link / "queues.conf").read_text()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def server(
    wrapup_pbx: PbxUnderTest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("wrapup-server")
    with live_server(wrapup_pbx, wrapup_pbx.settings.database_url, workdir) as running:
        yield running


@pytest.fixture(scope="module")
def tap(wrapup_pbx: PbxUnderTest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AmiTap]:
    ami = AmiTap(wrapup_pbx.settings, tmp_path_factory.mktemp("tap") / "ami.txt")
    yield ami
    ami.close()


@pytest.fixture(scope="module")
def phones(wrapup_pbx: PbxUnderTest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Both agents' phones, answering after one second, for every call of the module."""
    workdir = tmp_path_factory.mktemp("phones")
    started = [start_phone(wrapup_pbx, ext, 1000, workdir) for ext in ("1001", "1002")]
    yield
    for phone in started:
        phone.stop()


def _pause(tap: AmiTap, interface: str, paused: bool) -> None:
    reply = tap.action(
        "QueuePause", Interface=interface, Paused="true" if paused else "false", Reason="test"
    )
    assert reply.get("Response") == "Success", reply


def _call(pbx: PbxUnderTest, tmp_path: Path, talk_ms: int, started: list[Sipp]) -> Sipp:
    """A carrier call that keys 9 in the menu after 6.5 s (so it queues at once) and then
    stays on for talk_ms; place_call keys only just before hanging up. One at a time: in
    test mode the PBX knows the carrier by its address and port."""
    s = pbx.settings
    args = [
        f"127.0.0.1:{s.sip_port}", "-s", s.hotline_number, "-p", str(s.carrier_port),
        "-key", "caller", CALLER_MOBILE, "-key", "caller_name", CALLER_MOBILE,
        "-m", "1", "-d", str(talk_ms),
    ]  # fmt: skip
    replace = {
        "<pause/>": '<pause milliseconds="6500"/>',
        '<pause milliseconds="500"/>': "<pause/>",
    }
    call = Sipp(tmp_path, "carrier_call.xml", args, dtmf="9", replace=replace)
    started.append(call)
    return call


def _joined(tap: AmiTap, mark: int) -> Event:
    return tap.wait_event("QueueCallerJoin", timeout=60, start=mark)


def _offers(tap: AmiTap, start: int, linkedid: str) -> list[str]:
    return [
        e.get("Interface", "")
        for e in tap.events[start:]
        if e.get("Event") == "AgentCalled" and e.get("Linkedid") == linkedid
    ]


def _wrapup_of(server: LiveServer, session: tuple[str, str], linkedid: str) -> dict[str, Any]:
    """The agent's running wrap-up once the server has it for this call (with its call id:
    the call log is written by another process, a moment later)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        wrapup = server.get_json("/api/agent/wrapup", session)["wrapup"]
        if wrapup and wrapup["linkedid"] == linkedid and wrapup["call_id"]:
            return dict(wrapup)
        time.sleep(0.1)
    raise AssertionError(f"no wrap-up for {linkedid}: {wrapup}")


def _until_free(server: LiveServer, session: tuple[str, str]) -> None:
    deadline = time.monotonic() + WRAPUP_S + 15
    while server.get_json("/api/agent/wrapup", session)["wrapup"] is not None:
        assert time.monotonic() < deadline, "the wrap-up never ended"
        time.sleep(0.2)


def _answered_by(tap: AmiTap, mark: int, linkedid: str, interface: str) -> Event:
    return tap.wait_for(
        lambda e: (
            e.get("Event") == "AgentConnect"
            and e.get("Linkedid") == linkedid
            and e.get("Interface") == interface
        ),
        timeout=90,
        start=mark,
    )


def _completed(tap: AmiTap, mark: int, linkedid: str) -> Event:
    return tap.wait_for(
        lambda e: e.get("Event") == "AgentComplete" and e.get("Linkedid") == linkedid,
        timeout=90,
        start=mark,
    )


def test_wrap_up_blocks_the_next_offer(
    wrapup_pbx: PbxUnderTest,
    server: LiveServer,
    tap: AmiTap,
    phones: None,
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    session = server.login("agent1001")
    _pause(tap, SECOND, True)  # the first call goes to 1001
    mark = tap.mark()
    caller = _call(wrapup_pbx, tmp_path / "a", 4000, sipp_processes)
    first = _joined(tap, mark)["Linkedid"]
    _answered_by(tap, mark, first, FIRST)
    done = _completed(tap, mark, first)  # the caller hung up: 1001's wrap-up starts
    assert caller.wait(30) == 0, caller.errors()  # the carrier's one port is free again
    after_first = tap.mark()
    wrapup = _wrapup_of(server, session, first)
    assert wrapup["until"] == pytest.approx(float(done["Timestamp"]) + WRAPUP_S, abs=0.5)
    assert wrapup["can_extend"] and not wrapup["extended"]
    board = server.get_json("/api/wallboard", server.login("admin"))
    states = {a["interface"]: a["state"] for a in board["agents"]}
    assert states[FIRST] == "wrapup", board["agents"]

    # A second call during the wrap-up: offered to 1002 only.
    _pause(tap, SECOND, False)
    caller = _call(wrapup_pbx, tmp_path / "b", 3000, sipp_processes)
    second = _joined(tap, after_first)["Linkedid"]
    _answered_by(tap, after_first, second, SECOND)
    assert _offers(tap, after_first, second) == [SECOND]
    assert caller.wait(30) == 0, caller.errors()

    # A third while 1001 is still in wrap-up and 1002 is not there: it waits for 1001.
    _pause(tap, SECOND, True)
    third_mark = tap.mark()
    _call(wrapup_pbx, tmp_path / "c", 20000, sipp_processes)
    joined = _joined(tap, third_mark)
    third = joined["Linkedid"]
    assert float(joined["Timestamp"]) < wrapup["until"] - 3, "joined too late to prove a thing"
    offered = tap.wait_for(
        lambda e: e.get("Event") == "AgentCalled" and e.get("Linkedid") == third,
        timeout=WRAPUP_S + 30,
        start=third_mark,
    )
    assert offered["Interface"] == FIRST
    assert float(offered["Timestamp"]) >= wrapup["until"] - 1.0  # not before wrap-up ended
    assert not [
        e for e in tap.events[after_first:] if e.get("Event") == "AgentCalled"
        and e.get("Interface") == FIRST and e is not offered
    ]  # fmt: skip
    _answered_by(tap, third_mark, third, FIRST)
    assert server.get_json("/api/agent/wrapup", session)["wrapup"] is None
    _completed(tap, third_mark, third)
    _pause(tap, SECOND, False)


def test_the_extension_keeps_the_agent_paused(
    wrapup_pbx: PbxUnderTest,
    server: LiveServer,
    tap: AmiTap,
    phones: None,
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    session = server.login("agent1001")
    _until_free(server, session)  # of the previous test's last call
    _pause(tap, SECOND, True)
    mark = tap.mark()
    caller = _call(wrapup_pbx, tmp_path / "d", 4000, sipp_processes)
    call = _joined(tap, mark)["Linkedid"]
    _answered_by(tap, mark, call, FIRST)
    _completed(tap, mark, call)
    assert caller.wait(30) == 0, caller.errors()
    wrapup = _wrapup_of(server, session, call)
    paused_mark = tap.mark()
    extended = server.post(f"/api/calls/{wrapup['call_id']}/wrap-up/extend", session, {})
    until = extended["wrapup"]["until"]
    assert until == pytest.approx(wrapup["until"] + WRAPUP_S, abs=0.01)
    tap.wait_event("QueueMemberPause", start=paused_mark, Interface=FIRST, Paused="1",
                   PausedReason=WRAPUP_REASON)  # fmt: skip
    _pause(tap, SECOND, False)

    # Asterisk's own wrapuptime is over; the pause still keeps 1001 out. No AMI event marks
    # the end of a wrapuptime, so this waits for the clock.
    time.sleep(max(0.0, wrapup["until"] + 1 - time.time()))
    during = tap.mark()
    caller = _call(wrapup_pbx, tmp_path / "e", 3000, sipp_processes)
    later = _joined(tap, during)["Linkedid"]
    _answered_by(tap, during, later, SECOND)
    assert _offers(tap, during, later) == [SECOND]
    assert caller.wait(30) == 0, caller.errors()

    released = tap.wait_event("QueueMemberPause", timeout=WRAPUP_S + 30, start=paused_mark,
                              Interface=FIRST, Paused="0")  # fmt: skip
    assert float(released["Timestamp"]) >= until - 1.0
    assert server.get_json("/api/agent/wrapup", session)["wrapup"] is None

    # Free again: the next call is offered to 1001.
    _pause(tap, SECOND, True)
    again = tap.mark()
    _call(wrapup_pbx, tmp_path / "f", 4000, sipp_processes)
    last = _joined(tap, again)["Linkedid"]
    _answered_by(tap, again, last, FIRST)
    _pause(tap, SECOND, False)
