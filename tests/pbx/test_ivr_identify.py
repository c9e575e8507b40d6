"""A real call through the IVR: an unknown caller keys a VIN tail, our FastAGI identifies them.

SIPp plays the carrier with RFC 2833 digits (sip-tester's dtmf_2833_<d>.pcap); the FastAGI
server under test runs in this test's event loop on the test instance's fastagi_port. The
AMI tap and SIPp are blocking, so the test waits on them in threads and the loop stays free
to serve the AGI.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from ami_tap import AmiTap
from pbx_harness import PbxUnderTest, Sipp, sipp_data_dir

from crm_core.customers import CustomerService
from crm_core.db import Database
from crm_core.events import EventBus
from crm_core.settings import Settings
from crm_core.vehicles import VehicleService
from cti.agi_handlers import build_agi_server

pytestmark = [pytest.mark.pbx, pytest.mark.usefixtures("calls_cleared")]

UNKNOWN_CALLER = "13766660001"
# Digits in the order of the pcaps' RTP sequence numbers (1 < 2 < ... < 9 < # in
# sip-tester's files), so no digit repeats or goes back in time on the stream.
VIN_TAIL = "234567"
MENU_IDENTIFY = "1"


def _ivr_call(pbx: PbxUnderTest, workdir: Path, caller: str, tail: str) -> Sipp:
    """The carrier calls, presses the menu key, keys `tail` and #, then holds for a while.
    `tail` is six keys (the scenario's key1..key6); a `p` is the # key ("1pppppp": 1#)."""
    data = sipp_data_dir()
    pcaps = workdir / "pcap"
    pcaps.mkdir(parents=True, exist_ok=True)
    keys = {"menu": MENU_IDENTIFY, **{f"key{i}": d for i, d in enumerate(tail[:6], 1)}}
    keys = {name: "pound" if digit == "p" else digit for name, digit in keys.items()}
    keys["end"] = "pound"
    for name, digit in keys.items():
        link = pcaps / f"{name}.pcap"
        link.unlink(missing_ok=True)
        link.symlink_to(data / f"dtmf_2833_{digit}.pcap")
    s = pbx.settings
    # Sipp numbers media ports from 30000 in every process, so two test runs on one machine
    # collide ("Unable to bind audio RTP socket"); take ports above this instance's RTP range.
    Sipp._media_port = max(Sipp._media_port, s.rtp_end_port + 100 + os.getpid() % 40 * 20)
    args = [
        f"127.0.0.1:{s.sip_port}", "-s", s.hotline_number, "-p", str(s.carrier_port),
        "-key", "caller", caller, "-key", "caller_name", caller, "-m", "1", "-d", "6000",
    ]  # fmt: skip
    return Sipp(workdir, "carrier_ivr.xml", args)


def _sipp_report(carrier: Sipp) -> str:
    out = carrier.workdir / "sipp.out"
    text = out.read_text(errors="replace")[-2000:] if out.is_file() else ""
    return f"SIPp exit {carrier.proc.poll()}: {text}{carrier.errors()[-2000:]}"


async def test_unknown_caller_identifies_by_vin_tail_on_the_keypad(
    pbx: PbxUnderTest,
    ami: AmiTap,
    sipp_processes: list[Sipp],
    settings: Settings,
    db: Database,
    tmp_path: Path,
) -> None:
    customer = await CustomerService(db).create(
        {"name": "芜湖专用车运输有限公司", "vip_level": 0}, ["0553-5551234"], allow_duplicate=True
    )
    await VehicleService(db).create({"vin": f"LZZ1CLVB7KA{VIN_TAIL}", "customer_id": customer.id})
    server = build_agi_server(settings, db, EventBus(), port=pbx.settings.fastagi_port)
    await server.start()
    try:
        start = ami.mark()
        workdir = tmp_path / f"carrier-{time.monotonic_ns()}"
        carrier = _ivr_call(pbx, workdir, UNKNOWN_CALLER, VIN_TAIL)
        sipp_processes.append(carrier)

        def on_call(variable: str, value: str) -> dict[str, str]:
            return ami.wait_for(
                lambda e: (
                    e.get("Event") == "VarSet"
                    and e.get("Channel", "").startswith("PJSIP/carrier-")
                    and e.get("Variable") == variable
                    and e.get("Value") == value
                ),
                timeout=60,
                start=start,
            )

        try:
            lookup = await asyncio.to_thread(on_call, "HOTLINE_CANDIDATES", "0")
            found = await asyncio.to_thread(on_call, "HOTLINE_CUSTOMER_ID", str(customer.id))
            key = await asyncio.to_thread(on_call, "HOTLINE_KEY", f"vin:{VIN_TAIL}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{_sipp_report(carrier)}") from None
        assert found["Uniqueid"] == lookup["Uniqueid"] == key["Uniqueid"]
        assert found["CallerIDNum"] == UNKNOWN_CALLER
        # Identified, the call goes on to the queue like any other.
        await asyncio.to_thread(
            ami.wait_event, "QueueCallerJoin", 60, start, Uniqueid=found["Uniqueid"]
        )
        assert await asyncio.to_thread(carrier.wait, 90) == 0, carrier.errors()
    finally:
        await server.stop()
