"""`hotline demo-call`: a real SIP call into the local PBX (the one `make run` starts), from a
known demo customer's number, so a newcomer watches the pop on agent1001's desktop.

SIPp plays the carrier (an INVITE to the 400 number from the customer's caller ID) and, unless
a softphone already listens there, the agent's phone too: it rings for a while, so the pop is
there to see while it rings, then answers, talks and hangs up.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from crm_core.errors import HotlineError
from crm_core.settings import Settings

PHONE_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="hotline demo agent phone">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

  ]]></send>
  <recv request="CANCEL" timeout="RING_MS" ontimeout="answer"/>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

  ]]></send>
  <send><![CDATA[
      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      CSeq: [cseq] INVITE
      Content-Length: 0

  ]]></send>
  <recv request="ACK" next="end"/>
  <label id="answer"/>
  <send retrans="500"><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=agent 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=sendrecv
  ]]></send>
  <recv request="ACK" crlf="true"/>
  <recv request="BYE"/>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

  ]]></send>
  <label id="end"/>
</scenario>
"""

# The carrier: one call to the 400 number, no key pressed (the IVR menu times out into the
# queue), hang up after the default pause (-d).
CARRIER_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="hotline demo carrier call">
  <send retrans="500"><![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "[caller]" <sip:[caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:[caller]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Subject: hotline demo call
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=carrier 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=sendrecv
  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true" rrs="true"/>
  <send><![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "[caller]" <sip:[caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      [routes]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:[caller]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

  ]]></send>
  <pause/>
  <send retrans="500"><![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "[caller]" <sip:[caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      [routes]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: <sip:[caller]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

  ]]></send>
  <recv response="200" crlf="true"/>
</scenario>
"""


class DemoCallError(HotlineError):
    status = 400
    error_id = "demo_call_failed"


def sipp_binary() -> str:
    found = shutil.which("sipp")
    if found is None:
        raise DemoCallError(
            "sipp is missing: install Debian's sip-tester package (scripts/system-packages.sh)"
        )
    return found


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def national(e164: str) -> str:
    return "0" + e164[3:] if e164.startswith("+86") and not e164.startswith("+861") else e164[3:]


async def _demo_number(settings: Settings) -> tuple[str, str]:
    """A known customer's own mobile number (and the customer's name) from the CRM."""
    from sqlalchemy import select

    from crm_core.db import Database
    from crm_core.models import Customer, PhoneNumber

    db = Database.open(settings)
    try:
        async with db.connect() as conn:
            row = (
                await conn.execute(
                    select(PhoneNumber.e164, Customer.name)
                    .join(Customer, Customer.id == PhoneNumber.customer_id)
                    .where(
                        PhoneNumber.contact_id.is_(None),
                        PhoneNumber.e164.like("+861%"),
                        Customer.deleted.is_(False),
                        Customer.merged_into_id.is_(None),
                    )
                    .order_by(Customer.id)
                    .limit(1)
                )
            ).first()
    finally:
        await db.close()
    if row is None:
        raise DemoCallError("no demo customer with a mobile number: run `hotline seed` first")
    return national(str(row[0])), str(row[1])


def _agent_port(settings: Settings, username: str) -> tuple[str, int]:
    from asterisk_conf.service import agents_for
    from asterisk_conf.validate import phone_ports

    agents = agents_for(settings, None)
    for agent in agents:
        if agent.username == username:
            return agent.endpoint, phone_ports(settings, agents)[agent.endpoint]
    raise DemoCallError(f"{username} has no phone extension in the CRM (users.phone_interface)")


def _sipp(workdir: Path, name: str, scenario: str, args: list[str]) -> subprocess.Popen[bytes]:
    path = workdir / f"{name}.xml"
    path.write_text(scenario, encoding="utf-8")
    log = (workdir / f"{name}.out").open("wb")
    return subprocess.Popen(
        [sipp_binary(), *args, "-sf", str(path), "-i", "127.0.0.1", "-nostdin", "-trace_err"],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


def place_demo_call(
    settings: Settings, workdir: Path, number: str, talk_seconds: float
) -> subprocess.Popen[bytes]:
    """Start the carrier's SIPp call to the 400 number; the caller hangs up after talk_seconds
    (counted from the PBX's answer, which comes before the IVR, so include the IVR time)."""
    if not port_free(settings.carrier_host, settings.carrier_port):
        raise DemoCallError(
            f"the carrier port {settings.carrier_host}:{settings.carrier_port} is in use "
            "(another demo call still running?)"
        )
    args = [
        f"{settings.sip_host}:{settings.sip_port}",
        "-s", settings.hotline_number, "-p", str(settings.carrier_port),
        "-key", "caller", number, "-m", "1", "-d", str(int(talk_seconds * 1000)),
        "-mp", str(settings.rtp_end_port + 200),
    ]  # fmt: skip
    return _sipp(workdir, "carrier", CARRIER_SCENARIO, args)


def cmd_demo_call(settings: Settings, args: argparse.Namespace) -> int:
    from asterisk_conf.paths import pbx_paths
    from asterisk_conf.process import is_running

    sipp_binary()
    if not is_running(pbx_paths(settings)):
        raise DemoCallError(
            f"the local PBX ({settings.pbx_instance}) is not running: start it with `make run` "
            "or `hotline pbx start`"
        )
    number, name = (
        (args.from_number, "") if args.from_number else asyncio.run(_demo_number(settings))
    )
    workdir = Path(tempfile.mkdtemp(prefix="hotline-demo-call-"))
    phone: subprocess.Popen[bytes] | None = None
    if not args.no_phone:
        endpoint, port = _agent_port(settings, args.agent)
        if port_free("127.0.0.1", port):
            scenario = PHONE_SCENARIO.replace("RING_MS", str(int(args.ring * 1000)))
            phone_args = ["-p", str(port), "-m", "1", "-mp", str(settings.rtp_end_port + 300)]
            phone = _sipp(workdir, f"phone-{endpoint}", scenario, phone_args)
            print(
                f"demo-call: {args.agent}'s phone ({endpoint}) rings {args.ring:.0f} s, "
                "then answers"
            )
        else:
            print(
                f"demo-call: something already listens on {args.agent}'s phone port {port}; "
                "using it"
            )
    carrier = place_demo_call(settings, workdir, number, args.talk)
    who = f" ({name})" if name else ""
    print(
        f"demo-call: calling {settings.hotline_number} from {number}{who}; log in as "
        f"{args.agent} at http://{settings.http_host}:{settings.http_port}/desktop to see the pop",
        flush=True,
    )
    code = _wait(carrier, phone, args.talk + 60)
    print(f"demo-call: {'done' if code == 0 else f'sipp exited {code}; logs in {workdir}'}")
    return 0 if code == 0 else 1


def _wait(
    carrier: subprocess.Popen[bytes], phone: subprocess.Popen[bytes] | None, timeout: float
) -> int:
    deadline = time.monotonic() + timeout
    try:
        while carrier.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        for process in (carrier, phone):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=5)
    return carrier.returncode if carrier.returncode is not None else 1


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "demo-call",
        help="place a real SIPp call into the local PBX from a demo customer's number",
        description=__doc__,
    )
    parser.add_argument(
        "--from", dest="from_number", help="caller number (default: a demo customer)"
    )
    parser.add_argument("--agent", default="agent1001", help="whose phone SIPp plays (agent1001)")
    parser.add_argument("--ring", type=float, default=8.0, help="seconds the phone rings (8)")
    parser.add_argument(
        "--talk", type=float, default=45.0, help="seconds from the PBX's answer to hang-up (45)"
    )
    parser.add_argument("--no-phone", action="store_true", help="do not play the agent's phone")
    parser.set_defaults(handler=cmd_demo_call)


if __name__ == "__main__":  # pragma: no cover - `hotline demo-call` is the way in
    sys.exit("use `hotline demo-call`")
