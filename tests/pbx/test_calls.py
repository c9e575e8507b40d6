"""Real calls through the real Asterisk: queue, recording, abandon, AGI outage, reload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ami_tap import AmiTap
from pbx_harness import (
    CALLER_MOBILE,
    PbxUnderTest,
    Sipp,
    listening_but_silent,
    place_call,
    start_phone,
    wait_for_wav,
    wav_facts,
)

pytestmark = [pytest.mark.pbx, pytest.mark.usefixtures("calls_cleared")]


def _timestamp(event: dict[str, str]) -> float:
    return float(event["Timestamp"])


def _carrier_hangup(ami: AmiTap, start: int, timeout: float = 90) -> dict[str, str]:
    return ami.wait_for(
        lambda e: e.get("Event") == "Hangup" and e.get("Channel", "").startswith("PJSIP/carrier-"),
        timeout,
        start,
    )


def test_mobile_call_is_queued_answered_and_recorded(
    pbx: PbxUnderTest, ami: AmiTap, sipp_processes: list[Sipp], tmp_path: Path
) -> None:
    sipp_processes.append(start_phone(pbx, "1001", 1500, tmp_path))
    sipp_processes.append(start_phone(pbx, "1002", None, tmp_path))
    start = ami.mark()
    carrier = place_call(pbx, tmp_path, caller=CALLER_MOBILE, hold_ms=14000)
    sipp_processes.append(carrier)

    joined = ami.wait_event("QueueCallerJoin", start=start, Queue="hotline")
    assert joined["CallerIDNum"] == CALLER_MOBILE
    called = ami.wait_event("AgentCalled", start=start, Interface="PJSIP/1001")
    assert called["MemberName"] == "zhang"
    connect = ami.wait_event("AgentConnect", start=start, Queue="hotline")
    assert connect["Interface"] == "PJSIP/1001"
    recording = ami.wait_event("VarSet", start=start, Variable="MIXMONITOR_FILENAME")
    began = ami.wait_event("MixMonitorStart", start=start)
    ended = _carrier_hangup(ami, start)
    assert carrier.wait() == 0, carrier.errors()

    wav = wait_for_wav(pbx.paths.host(recording["Value"]))
    seconds, rms = wav_facts(wav)
    call_seconds = _timestamp(ended) - _timestamp(began)
    assert abs(seconds - call_seconds) < max(2.0, 0.15 * call_seconds), (seconds, call_seconds)
    assert rms > 200, f"recording looks silent: RMS {rms:.1f}"
    # manager.conf's event filters hold back what nothing of ours reads (every skipped event
    # is one less ahead of an AgentCalled), and let through what the bridge needs.
    seen = ami.events[start:]
    names = {e.get("Event") for e in seen}
    variables = {e.get("Variable") for e in seen if e.get("Event") == "VarSet"}
    assert "Newexten" not in names and {"AgentCalled", "Hangup"} <= names
    assert "MIXMONITOR_FILENAME" in variables
    assert not variables & {"MEMBERINTERFACE", "MEMBERNAME", "BRIDGEPEER", "READSTATUS"}


def test_caller_abandons_in_queue_and_no_agent_leg_stays_up(
    pbx: PbxUnderTest, ami: AmiTap, sipp_processes: list[Sipp], tmp_path: Path
) -> None:
    sipp_processes.append(start_phone(pbx, "1001", None, tmp_path))
    sipp_processes.append(start_phone(pbx, "1002", None, tmp_path))
    start = ami.mark()
    carrier = place_call(pbx, tmp_path, hold_ms=8000)
    sipp_processes.append(carrier)

    ami.wait_event("AgentCalled", start=start, Queue="hotline")
    abandon = ami.wait_event("QueueCallerAbandon", start=start, Queue="hotline")
    assert abandon["CallerIDNum"] == CALLER_MOBILE
    _carrier_hangup(ami, start)
    assert carrier.wait() == 0, carrier.errors()
    for interface in ("PJSIP/1001", "PJSIP/1002"):
        ami.wait_for(
            lambda e, i=interface: (
                e.get("Event") == "Hangup" and e.get("Channel", "").startswith(i + "-")
            ),
            start=start,
        )
    assert not [c for c in pbx.channels() if c.startswith(("PJSIP/1001", "PJSIP/1002"))]


def test_closed_agi_port_still_reaches_an_agent(
    pbx: PbxUnderTest, ami: AmiTap, sipp_processes: list[Sipp], tmp_path: Path
) -> None:
    sipp_processes.append(start_phone(pbx, "1001", 1000, tmp_path))
    sipp_processes.append(start_phone(pbx, "1002", None, tmp_path))
    start = ami.mark()
    sipp_processes.append(place_call(pbx, tmp_path, hold_ms=6000))

    status = ami.wait_event("VarSet", start=start, Variable="AGISTATUS")
    assert status["Value"] == "FAILURE"
    ami.wait_event("AgentConnect", start=start, Interface="PJSIP/1001")


def test_hung_agi_service_still_reaches_an_agent(
    pbx: PbxUnderTest, ami: AmiTap, sipp_processes: list[Sipp], tmp_path: Path
) -> None:
    sipp_processes.append(start_phone(pbx, "1001", 1000, tmp_path))
    sipp_processes.append(start_phone(pbx, "1002", None, tmp_path))
    settings = pbx.settings
    with listening_but_silent(settings.fastagi_host, settings.fastagi_port):
        start = ami.mark()
        sipp_processes.append(place_call(pbx, tmp_path, hold_ms=10000))
        # res_agi first reports HANGUP (the timeout's soft hang-up); the T branch then says why.
        ami.wait_event("VarSet", start=start, Variable="AGISTATUS", Value="TIMEOUT")
        ami.wait_event("AgentConnect", start=start, Interface="PJSIP/1001")


def test_reload_during_a_live_call_does_not_drop_it(
    pbx: PbxUnderTest, ami: AmiTap, sipp_processes: list[Sipp], tmp_path: Path
) -> None:
    sipp_processes.append(start_phone(pbx, "1001", 1000, tmp_path))
    sipp_processes.append(start_phone(pbx, "1002", None, tmp_path))
    start = ami.mark()
    carrier = place_call(pbx, tmp_path, hold_ms=16000)
    sipp_processes.append(carrier)
    ami.wait_event("AgentConnect", start=start, Interface="PJSIP/1001")

    original = pbx.agents_file.read_text(encoding="utf-8")
    wang = {"username": "wang", "display_name": "王五", "phone_interface": "PJSIP/1003"}
    pbx.write_agents([*json.loads(original), wang])
    try:
        done = pbx.hotline("pbx", "reload", "--agents", str(pbx.agents_file))
        assert done.returncode == 0, done.stderr
        assert "reloaded" in done.stdout
        assert "wang (PJSIP/1003)" in pbx.cli("queue show hotline")
        assert any(c.startswith("PJSIP/carrier-") for c in pbx.channels())
        hangup = _carrier_hangup(ami, start)
        assert carrier.wait() == 0, carrier.errors()  # the carrier's own BYE ended the call
        assert hangup["Cause"] == "16"
    finally:
        pbx.agents_file.write_text(original, encoding="utf-8")
        pbx.hotline("pbx", "reload", "--agents", str(pbx.agents_file))
