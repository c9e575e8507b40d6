"""What the PBX says about its live calls right after we (re)connect, read from the resync
snapshot: CoreShowChannels (every channel, grouped by Linkedid) and QueueStatus's QueueEntry
(who waits in which queue, for how long).

AMI has no replay, so a call that began while our link was down is known only from this.
`seen_calls` turns the snapshot into one SeenCall per inbound call; the tracker adopts the
ones it does not know (cti/tracker_resync.py) and brings the ones it knows up to date.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cti.tracker import OUTBOUND_CONTEXT

CARRIER_PREFIX = "PJSIP/carrier-"
# Channel variables the bridge reads with Getvar from an adopted call's caller leg.
ADOPTED_VARIABLES = ("MIXMONITOR_FILENAME", "HOTLINE_CUSTOMER_ID", "HOTLINE_KEY")


@dataclass(frozen=True)
class SeenLeg:
    channel: str
    uniqueid: str
    state: str  # ChannelStateDesc: Up, Ringing, Ring, Down, ...
    bridge_id: str
    context: str
    application: str
    caller_num: str
    caller_name: str
    seconds: float  # how long the channel has existed

    @property
    def interface(self) -> str:
        """PJSIP/1001-00000005 -> PJSIP/1001."""
        return self.channel.rsplit("-", 1)[0]


@dataclass
class SeenCall:
    linkedid: str
    caller: SeenLeg
    agents: list[SeenLeg]
    queue: str | None = None
    waited: float | None = None  # seconds in the queue so far (QueueEntry Wait)
    variables: dict[str, str] = field(default_factory=dict)

    def talking_agent(self) -> SeenLeg | None:
        """The agent leg bridged with the caller, if the call is being talked."""
        if not self.caller.bridge_id:
            return None
        for leg in self.agents:
            if leg.bridge_id == self.caller.bridge_id and leg.state == "Up":
                return leg
        return None

    def ringing_agents(self) -> list[SeenLeg]:
        return [leg for leg in self.agents if leg.state in ("Ringing", "Ring")]


def _seconds(duration: str) -> float:
    """CoreShowChannel's Duration, HH:MM:SS."""
    try:
        hours, minutes, seconds = (int(part) for part in duration.split(":"))
    except ValueError:
        return 0.0
    return float(hours * 3600 + minutes * 60 + seconds)


def _leg(h: Mapping[str, str]) -> SeenLeg:
    return SeenLeg(
        channel=h.get("Channel", ""),
        uniqueid=h.get("Uniqueid", ""),
        state=h.get("ChannelStateDesc", ""),
        bridge_id=h.get("BridgeId", ""),
        context=h.get("Context", ""),
        application=h.get("Application", ""),
        caller_num=h.get("CallerIDNum", ""),
        caller_name=h.get("CallerIDName", ""),
        seconds=_seconds(h.get("Duration", "")),
    )


def _queue_of(app_data: str) -> str | None:
    """Queue(hotline,rc,,,300) -> hotline."""
    name = app_data.split(",", 1)[0].strip()
    return name or None


def seen_calls(channels: Iterable[Any], queue_items: Iterable[Any]) -> list[SeenCall]:
    """One SeenCall per inbound call in the snapshot (its caller leg is the Linkedid's own
    channel, on the carrier trunk). Outbound calls are left out: their call-log rows are made
    by click-to-dial and keyed by its request, which only their own events can settle."""
    by_linkedid: dict[str, list[Mapping[str, str]]] = {}
    for event in channels:
        headers = event.headers
        by_linkedid.setdefault(headers.get("Linkedid", ""), []).append(headers)
    waiting = {
        e.headers.get("Uniqueid", ""): e.headers for e in queue_items if e.name == "QueueEntry"
    }
    calls = []
    for linkedid, legs in by_linkedid.items():
        first = next((h for h in legs if h.get("Uniqueid") == linkedid), None)
        if not linkedid or first is None:
            continue
        caller = _leg(first)
        if not caller.channel.startswith(CARRIER_PREFIX) or caller.context.startswith(
            OUTBOUND_CONTEXT
        ):
            continue
        agents = [
            _leg(h)
            for h in legs
            if h is not first and not h.get("Channel", "").startswith(CARRIER_PREFIX)
        ]
        call = SeenCall(linkedid, caller, agents)
        entry = waiting.get(linkedid)
        if entry is not None:
            call.queue = entry.get("Queue") or None
            try:
                call.waited = float(entry.get("Wait", ""))
            except ValueError:
                call.waited = None
        elif caller.application == "Queue":
            call.queue = _queue_of(first.get("ApplicationData", ""))
        calls.append(call)
    return calls
