"""After a (re)connect: the tracker learns the live calls from the resync snapshot.

A call it does not know (it began while the link was down, or before this process started)
is adopted in the state the PBX shows: in the IVR, queued, ringing agents, or talking. A call
it knows is brought up to date: answered while we were away, a ring that ended, a new ring.
Every domain event the live events would have raised is raised here, once: a ring that had
popped before the outage and still rings pops nothing again.

These are the tracker's own steps (cti/tracker.py), used from here so that the tracker stays
a module of AMI event handlers.
"""

from __future__ import annotations

from cti.call_events import (
    AgentRinging,
    CallIdentified,
    CallQueued,
    Direction,
    RecordingStarted,
)
from cti.outage_recovery import RecoveredCall
from cti.resync_calls import SeenCall, SeenLeg
from cti.tracker import CallState, CallTracker, Ring, RingState, TrackedCall


def bring_up_to_date(tracker: CallTracker, server: str, seen: SeenCall, now: float) -> bool:
    """Adopt `seen` if the tracker does not know it (returns True), or catch the known call up
    with what happened to it meanwhile (returns False)."""
    call = tracker.calls.get((server, seen.linkedid))
    adopted = call is None
    if call is None:
        call = _adopt(tracker, server, seen, now)
    elif call.state is CallState.ENDED:
        return False
    _catch_up_rings(tracker, call, seen, now)
    return adopted


def _adopt(tracker: CallTracker, server: str, seen: SeenCall, now: float) -> TrackedCall:
    leg = seen.caller
    call = TrackedCall(
        server=server,
        linkedid=seen.linkedid,
        direction=Direction.INBOUND,
        caller=leg.caller_num,
        caller_name=leg.caller_name,
        did="",
        started_at=now - leg.seconds,
    )
    tracker.calls[(server, seen.linkedid)] = call
    tracker._started(call)
    recording = seen.variables.get("MIXMONITOR_FILENAME")
    if recording:
        call.recording = call.recording or recording
        tracker.emit(RecordingStarted(server, call.linkedid, recording, call.started_at))
    customer = seen.variables.get("HOTLINE_CUSTOMER_ID", "")
    call.business_key = seen.variables.get("HOTLINE_KEY") or None
    if customer.isdigit():
        call.customer_id = int(customer)
        tracker.emit(
            CallIdentified(server, call.linkedid, call.customer_id, call.business_key, now)
        )
    if seen.queue is not None:
        call.queue = seen.queue
        call.queued_at = now - seen.waited if seen.waited is not None else now
        call.move(CallState.QUEUED)
        tracker.emit(CallQueued(server, call.linkedid, seen.queue, call.queued_at))
    return call


def _catch_up_rings(tracker: CallTracker, call: TrackedCall, seen: SeenCall, now: float) -> None:
    legs = {leg.uniqueid: leg for leg in seen.agents}
    for ring in call.active_rings():
        if ring.ring_id not in legs:  # that phone stopped ringing while we were away
            tracker._withdraw(call, ring, "cancelled", now)
    talking = seen.talking_agent()
    if talking is not None:
        if call.answered_by is None:
            ring = call.rings.get(talking.uniqueid) or _ring(tracker, call, talking, now)
            tracker._answer(call, ring.ring_id, ring.interface, ring.member_name, call.queue, now)
        return
    for leg in seen.ringing_agents():
        if leg.uniqueid not in call.rings:
            _ring(tracker, call, leg, now)


def _ring(tracker: CallTracker, call: TrackedCall, leg: SeenLeg, now: float) -> Ring:
    """A ring the live events never showed us: it pops now, to that agent only."""
    ring = Ring(leg.uniqueid, leg.interface, "", call.queue)
    call.rings[leg.uniqueid] = ring
    if call.state is not CallState.CONNECTED:
        if call.state is not CallState.RINGING:
            call.move(CallState.RINGING)
        event = AgentRinging(
            call.server,
            call.linkedid,
            ring.ring_id,
            ring.interface,
            "",
            ring.queue,
            call.caller,
            now,
        )
        tracker.emit(event)
    else:
        ring.state = RingState.WITHDRAWN
    return ring


def log_recovered(
    tracker: CallTracker, server: str, recovered: RecoveredCall, recording: str | None
) -> bool:
    """A call that began and ended while the link was down (from the PBX's call records):
    the events its live AMI stream would have raised, from start to end, without a pop (it
    is over). False when the tracker knows the call already."""
    key = (server, recovered.linkedid)
    if key in tracker.calls:
        return False
    call = TrackedCall(
        server=server,
        linkedid=recovered.linkedid,
        direction=Direction.INBOUND,
        caller=recovered.caller,
        caller_name="",
        did="",
        started_at=recovered.started_at,
    )
    tracker.calls[key] = call
    tracker._started(call)
    if recording:
        call.recording = recording
        tracker.emit(RecordingStarted(server, call.linkedid, recording, call.started_at))
    if recovered.agent_interface and recovered.answered_at is not None:
        ring_id = f"cdr:{recovered.linkedid}"
        call.rings[ring_id] = Ring(ring_id, recovered.agent_interface, "", None)
        tracker._answer(call, ring_id, recovered.agent_interface, "", None, recovered.answered_at)
    reason = "recovered from the PBX's call records after an AMI outage"
    tracker.end(call, recovered.outcome, recovered.ended_at, reason=reason)
    return True
