"""Regenerate tests/fixtures/ami/*.txt: raw AMI streams recorded off the real Asterisk.

Run as root on a provisioned machine (`hotline pbx install`):

    .venv/bin/python tests/pbx/capture_transcripts.py [NAME ...]

It starts its own PBX instance ("capture", SIP 27060, AMI 27038), plays each scenario with
SIPp phones and a SIPp carrier, and writes one transcript per scenario, exactly the bytes
Asterisk sent (CRLF line ends), from the AMI login response onwards.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ami_tap import AmiTap
from pbx_harness import (
    REPO,
    PbxUnderTest,
    Sipp,
    pbx_test_settings,
    place_call,
    start_carrier_phone,
    start_phone,
    tiny_fastagi,
)

FIXTURES = REPO / "tests" / "fixtures" / "ami"
Scenario = Callable[[PbxUnderTest, AmiTap, Path, list[Sipp]], None]


def _carrier_gone(ami: AmiTap, start: int, timeout: float = 90) -> None:
    ami.wait_for(
        lambda e: e.get("Event") == "Hangup" and e.get("Channel", "").startswith("PJSIP/carrier-"),
        timeout,
        start,
    )


def answered_queue_call(pbx: PbxUnderTest, ami: AmiTap, work: Path, sipps: list[Sipp]) -> None:
    """One agent free (the other paused), answers; the caller hangs up."""
    ami.action("QueuePause", Queue="hotline", Interface="PJSIP/1002", Paused="true")
    sipps.append(start_phone(pbx, "1001", 1500, work))
    start = ami.mark()
    sipps.append(place_call(pbx, work, hold_ms=10000))
    _carrier_gone(ami, start)
    ami.action("QueuePause", Queue="hotline", Interface="PJSIP/1002", Paused="false")


def ringall_one_answers(pbx: PbxUnderTest, ami: AmiTap, work: Path, sipps: list[Sipp]) -> None:
    sipps.append(start_phone(pbx, "1001", 2000, work))
    sipps.append(start_phone(pbx, "1002", None, work))
    start = ami.mark()
    sipps.append(place_call(pbx, work, caller="+8613905581234", hold_ms=10000))
    _carrier_gone(ami, start)


def caller_abandons(pbx: PbxUnderTest, ami: AmiTap, work: Path, sipps: list[Sipp]) -> None:
    sipps.append(start_phone(pbx, "1001", None, work))
    sipps.append(start_phone(pbx, "1002", None, work))
    start = ami.mark()
    sipps.append(place_call(pbx, work, caller="055812345678", hold_ms=8000))
    ami.wait_event("QueueCallerAbandon", start=start)
    _carrier_gone(ami, start)


def ring_no_answer_then_next(pbx: PbxUnderTest, ami: AmiTap, work: Path, sipps: list[Sipp]) -> None:
    """The VIP queue rings agents in turn: the first never answers, the second does."""
    sipps.append(start_phone(pbx, "1001", None, work))
    sipps.append(start_phone(pbx, "1002", 1500, work))
    s = pbx.settings
    routing = {"HOTLINE_QUEUE": "vip", "CALLERID(name)": "VIP customer"}
    with tiny_fastagi(s.fastagi_host, s.fastagi_port, routing):
        start = ami.mark()
        sipps.append(place_call(pbx, work, hold_ms=24000))
        ami.wait_event("AgentRingNoAnswer", start=start, Interface="PJSIP/1001")
        _carrier_gone(ami, start)


def click_to_dial(pbx: PbxUnderTest, ami: AmiTap, work: Path, sipps: list[Sipp]) -> None:
    sipps.append(start_phone(pbx, "1001", 1000, work))
    sipps.append(start_carrier_phone(pbx, work, 1500))
    start = ami.mark()
    ami.action(
        "Originate",
        Channel="PJSIP/1001",
        Context="hotline-outbound",
        Exten="13905581234",
        Priority="1",
        CallerID='"Hotline" <4008001234>',
        Timeout="30000",
        Async="true",
    )
    ami.wait_event("DialEnd", start=start, DialStatus="ANSWER")
    time.sleep(5)
    ami.action("Hangup", Channel="/^PJSIP/1001-.*$/")
    _carrier_gone(ami, start)


def blind_transfer(pbx: PbxUnderTest, ami: AmiTap, work: Path, sipps: list[Sipp]) -> None:
    sipps.append(start_phone(pbx, "1001", 1000, work))
    sipps.append(start_phone(pbx, "1002", 4000, work))
    start = ami.mark()
    sipps.append(place_call(pbx, work, hold_ms=26000))
    connect = ami.wait_event("AgentConnect", start=start, Interface="PJSIP/1001")
    time.sleep(3)
    ami.action(
        "BlindTransfer", Channel=connect["DestChannel"], Context="hotline-internal", Exten="1002"
    )
    ami.wait_event("BlindTransfer", start=start)
    _carrier_gone(ami, start)


def restart_mid_call(pbx: PbxUnderTest, ami: AmiTap, work: Path, sipps: list[Sipp]) -> None:
    sipps.append(start_phone(pbx, "1001", 1000, work))
    sipps.append(start_phone(pbx, "1002", None, work))
    start = ami.mark()
    sipps.append(place_call(pbx, work, hold_ms=30000))
    ami.wait_event("AgentConnect", start=start)
    time.sleep(2)
    pbx.cli("core restart now")
    ami.wait_event("FullyBooted", start=start + 1, timeout=90)
    time.sleep(2)


def sticky_owner_answers(pbx: PbxUnderTest, ami: AmiTap, work: Path, sipps: list[Sipp]) -> None:
    """The lookup names the customer's own agent (HOTLINE_STICKY): Dial, no queue; answered."""
    sipps.append(start_phone(pbx, "1001", 1000, work))
    sipps.append(start_phone(pbx, "1002", 1500, work))
    s = pbx.settings
    routing = {"HOTLINE_STICKY": "PJSIP/1002", "HOTLINE_CUSTOMER_ID": "1"}
    with tiny_fastagi(s.fastagi_host, s.fastagi_port, routing):
        start = ami.mark()
        sipps.append(place_call(pbx, work, hold_ms=25000, dtmf="9"))
        ami.wait_event("DialEnd", start=start, DialStatus="ANSWER")
        _carrier_gone(ami, start)


def sticky_owner_no_answer_then_queue(
    pbx: PbxUnderTest, ami: AmiTap, work: Path, sipps: list[Sipp]
) -> None:
    """The owner's phone rings out (Dial timeout); the call goes on to the queue (1001)."""
    ami.action("QueuePause", Queue="hotline", Interface="PJSIP/1002", Paused="true")
    sipps.append(start_phone(pbx, "1001", 1000, work))
    sipps.append(start_phone(pbx, "1002", None, work))
    s = pbx.settings
    routing = {"HOTLINE_STICKY": "PJSIP/1002", "HOTLINE_CUSTOMER_ID": "1"}
    try:
        with tiny_fastagi(s.fastagi_host, s.fastagi_port, routing):
            start = ami.mark()
            sipps.append(place_call(pbx, work, hold_ms=35000, dtmf="9"))
            ami.wait_event("AgentConnect", start=start, Interface="PJSIP/1001")
            _carrier_gone(ami, start)
    finally:
        ami.action("QueuePause", Queue="hotline", Interface="PJSIP/1002", Paused="false")


def call_begun_while_disconnected(
    pbx: PbxUnderTest, ami: AmiTap, work: Path, sipps: list[Sipp]
) -> None:
    """Our AMI link is away when the call starts: the transcript begins with the login while
    agent 1001's phone rings, then the resync (CoreShowChannels, QueueStatus), then the rest
    of the call (answered, then the caller hangs up)."""
    transcript = ami.transcript
    ami.close()
    work.mkdir(parents=True, exist_ok=True)
    ami.__dict__.update(AmiTap(pbx.settings, work / "before.txt").__dict__)  # a watcher
    ami.action("QueuePause", Queue="hotline", Interface="PJSIP/1002", Paused="true")
    sipps.append(start_phone(pbx, "1001", 5000, work))
    start = ami.mark()
    sipps.append(place_call(pbx, work, hold_ms=40000, dtmf="9"))
    ami.wait_event("AgentCalled", start=start, Interface="PJSIP/1001")
    ami.close()
    ami.__dict__.update(AmiTap(pbx.settings, transcript).__dict__)
    ami.action("CoreShowChannels")
    ami.action("QueueStatus")
    ami.wait_event("AgentConnect", start=0, Interface="PJSIP/1001")
    _carrier_gone(ami, 0)
    ami.action("QueuePause", Queue="hotline", Interface="PJSIP/1002", Paused="false")


SCENARIOS: dict[str, Scenario] = {
    "answered_queue_call": answered_queue_call,
    "ringall_two_agents_one_answers": ringall_one_answers,
    "caller_abandons_in_queue": caller_abandons,
    "ring_no_answer_then_next_agent": ring_no_answer_then_next,
    "click_to_dial_originate": click_to_dial,
    "blind_transfer": blind_transfer,
    "asterisk_restart_mid_call": restart_mid_call,
    "sticky_owner_answers": sticky_owner_answers,
    "sticky_owner_no_answer_then_queue": sticky_owner_no_answer_then_queue,
    "call_begun_while_disconnected": call_begun_while_disconnected,
}


def capture(pbx: PbxUnderTest, name: str, work: Path) -> None:
    transcript = FIXTURES / f"{name}.txt"
    sipps: list[Sipp] = []
    ami = AmiTap(pbx.settings, transcript)
    try:
        SCENARIOS[name](pbx, ami, work / name, sipps)
    finally:
        ami.close()
        for sipp in sipps:
            sipp.stop()
        if pbx.channels():
            pbx.cli("channel request hangup all")
        time.sleep(3)  # the queue's wrap-up time, so the next scenario starts clean
    print(f"{transcript.relative_to(REPO)}: {len(ami.events)} events")


def main(names: list[str]) -> int:
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        print(f"unknown scenario(s) {unknown}; known: {sorted(SCENARIOS)}", file=sys.stderr)
        return 2
    FIXTURES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hotline-capture-") as tmp:
        pbx = PbxUnderTest(pbx_test_settings("capture", offset=22000), Path(tmp))
        pbx.stop()
        pbx.start()
        try:
            for name in names or list(SCENARIOS):
                capture(pbx, name, Path(tmp))
        finally:
            pbx.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
