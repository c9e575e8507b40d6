"""Per-call state machine keyed by (server, Linkedid), fed with raw AMI events.

AMI events from different Asterisk modules are not strictly ordered and some come twice
(ring-all queues send `DialEnd CANCEL` twice per leg), so every step here is idempotent:
each domain event is emitted at most once per call or per ring, a stale event never moves
a call backwards, and nothing after the end of a call changes it.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from crm_core.errors import HotlineError
from cti.call_events import (
    AgentCompleted,
    AgentRinging,
    CallAnswered,
    CallEnded,
    CallIdentified,
    CallQueued,
    CallStarted,
    Direction,
    Outcome,
    RecordingStarted,
    RingWithdrawn,
)

# hotline-callback: a queue callback (cti/callback_worker.py) is handled like the inbound
# call it continues: the customer calls "through" the queue, the agent gets the pop.
INBOUND_CONTEXTS = frozenset({"from-carrier", "hotline-callback"})
OUTBOUND_CONTEXT = "hotline-outbound"


class AmiEventLike(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


class CallState(enum.StrEnum):
    IN_IVR = "in_ivr"
    QUEUED = "queued"
    RINGING = "ringing"
    CONNECTED = "connected"
    ENDED = "ended"


class IllegalCallTransition(HotlineError):
    status = 409
    error_id = "illegal_call_transition"


ALLOWED: dict[CallState, frozenset[CallState]] = {
    CallState.IN_IVR: frozenset(
        {CallState.QUEUED, CallState.RINGING, CallState.CONNECTED, CallState.ENDED}
    ),
    CallState.QUEUED: frozenset({CallState.RINGING, CallState.CONNECTED, CallState.ENDED}),
    CallState.RINGING: frozenset(
        {CallState.QUEUED, CallState.RINGING, CallState.CONNECTED, CallState.ENDED}
    ),
    CallState.CONNECTED: frozenset({CallState.CONNECTED, CallState.ENDED}),
    CallState.ENDED: frozenset(),
}


class RingState(enum.StrEnum):
    RINGING = "ringing"
    WITHDRAWN = "withdrawn"
    ANSWERED = "answered"


@dataclass
class Ring:
    ring_id: str
    interface: str
    member_name: str
    queue: str | None
    state: RingState = RingState.RINGING
    direct: bool = False  # dialled by the dialplan's Dial (sticky agent), not by a queue


@dataclass
class TrackedCall:
    server: str
    linkedid: str
    direction: Direction
    caller: str
    caller_name: str
    did: str
    started_at: float
    state: CallState = CallState.IN_IVR
    outcome: Outcome | None = None
    queue: str | None = None
    rings: dict[str, Ring] = field(default_factory=dict)
    answered_by: str | None = None
    recording: str | None = None
    recording_at: float | None = None
    customer_id: int | None = None
    business_key: str | None = None
    abandoned: bool = False
    transferred: bool = False
    request_id: str | None = None
    agent_interface: str | None = None  # outbound: the agent phone that placed the call
    queued_at: float | None = None
    agent_left_at: float | None = None

    def move(self, target: CallState) -> None:
        if target not in ALLOWED[self.state]:
            raise IllegalCallTransition(
                f"call {self.linkedid}: {self.state} → {target} is not allowed",
                linkedid=self.linkedid,
            )
        self.state = target

    def active_rings(self) -> list[Ring]:
        return [r for r in self.rings.values() if r.state is RingState.RINGING]


Emit = Callable[[object], None]


def _ts(headers: Mapping[str, str]) -> float:
    try:
        return float(headers["Timestamp"])
    except (KeyError, ValueError):
        return time.time()


class CallTracker:
    """Turns AMI events into call state and domain events (delivered to `emit`, in order)."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.calls: dict[tuple[str, str], TrackedCall] = {}
        self._handlers: dict[str, Callable[[str, Mapping[str, str]], None]] = {
            "Newchannel": self._newchannel,
            "VarSet": self._varset,
            "DialBegin": self._dial_begin,
            "OriginateResponse": self._originate_response,
            "QueueCallerJoin": self._queue_join,
            "AgentCalled": self._agent_called,
            "DialEnd": self._dial_end,
            "AgentRingNoAnswer": self._ring_no_answer,
            "AgentConnect": self._agent_connect,
            "AgentComplete": self._agent_complete,
            "QueueCallerAbandon": self._abandon,
            "BlindTransfer": self._transfer,
            "AttendedTransfer": self._transfer,
            "Hangup": self._hangup,
        }

    def handle(self, server: str, event: AmiEventLike) -> None:
        handler = self._handlers.get(event.name)
        if handler is not None:
            handler(server, event.headers)

    def call(self, server: str, linkedid: str) -> TrackedCall | None:
        return self.calls.get((server, linkedid))

    def _live(self, server: str, headers: Mapping[str, str]) -> TrackedCall | None:
        call = self.calls.get((server, headers.get("Linkedid", "")))
        return call if call is not None and call.state is not CallState.ENDED else None

    def _newchannel(self, server: str, h: Mapping[str, str]) -> None:
        linkedid, uniqueid = h.get("Linkedid", ""), h.get("Uniqueid", "")
        if not linkedid or linkedid != uniqueid or (server, linkedid) in self.calls:
            return  # an agent or carrier leg of a call we track, or a duplicate
        inbound = h.get("Context", "") in INBOUND_CONTEXTS
        call = TrackedCall(
            server=server,
            linkedid=linkedid,
            direction=Direction.INBOUND if inbound else Direction.OUTBOUND,
            caller=h.get("CallerIDNum", "") if inbound else "",
            caller_name=h.get("CallerIDName", ""),
            did=h.get("Exten", "") if inbound else "",
            started_at=_ts(h),
        )
        if not inbound:
            call.agent_interface = h.get("Channel", "").rsplit("-", 1)[0] or None
        self.calls[(server, linkedid)] = call
        if inbound:
            self._started(call)

    @staticmethod
    def _has_started(call: TrackedCall) -> bool:
        """Has CallStarted gone out? An outbound call starts when its number is dialled (the
        call log's row is re-keyed to the call then); before that, no event about it."""
        return call.direction is Direction.INBOUND or bool(call.caller)

    def _started(self, call: TrackedCall) -> None:
        self.emit(
            CallStarted(
                call.server,
                call.linkedid,
                call.direction,
                call.caller,
                call.caller_name,
                call.did,
                call.started_at,
                call.request_id,
            )
        )

    def _varset(self, server: str, h: Mapping[str, str]) -> None:
        call = self._live(server, h)
        if call is None:
            return
        variable, value, at = h.get("Variable", ""), h.get("Value", ""), _ts(h)
        if variable == "MIXMONITOR_FILENAME" and value and call.recording != value:
            call.recording = value
            call.recording_at = at
            if self._has_started(call):
                self.emit(RecordingStarted(server, call.linkedid, value, at))
        elif variable == "HOTLINE_CUSTOMER_ID" and value.isdigit():
            if call.customer_id != int(value):
                call.customer_id = int(value)
                self.emit(
                    CallIdentified(server, call.linkedid, call.customer_id, call.business_key, at)
                )
        elif variable == "HOTLINE_KEY" and value and call.business_key != value:
            call.business_key = value
        elif variable == "HOTLINE_REQUEST_ID" and value and call.request_id is None:
            call.request_id = value

    def _originate_response(self, server: str, h: Mapping[str, str]) -> None:
        """Click-to-dial: our ActionID carries the request id that created the log row."""
        action_id = h.get("ActionID", "")
        call = self.calls.get((server, h.get("Uniqueid", "")))
        if call is not None and action_id.startswith("originate:") and call.request_id is None:
            call.request_id = action_id.removeprefix("originate:")

    def _dial_begin(self, server: str, h: Mapping[str, str]) -> None:
        call = self._live(server, h)
        if call is None:
            return
        if call.direction is Direction.OUTBOUND:
            self._outbound_number(call, h)
        elif call.state is CallState.IN_IVR and h.get("Uniqueid") == call.linkedid:
            self._direct_ring(call, h)

    def _outbound_number(self, call: TrackedCall, h: Mapping[str, str]) -> None:
        """Outbound: the customer's number is known once the outbound context dials it."""
        if call.caller:
            return
        if h.get("Context", "").startswith(OUTBOUND_CONTEXT) and h.get("Exten"):
            call.caller = h["Exten"]
            call.started_at = min(call.started_at, _ts(h))
            self._started(call)
            if call.recording:  # MixMonitor starts before the Dial: its event waited for this
                at = call.recording_at or _ts(h)
                self.emit(RecordingStarted(call.server, call.linkedid, call.recording, at))

    def _direct_ring(self, call: TrackedCall, h: Mapping[str, str]) -> None:
        """The dialplan dials the customer's own agent before the queue (sticky agent).

        No queue is involved, so no AgentCalled comes: the caller leg's DialBegin is the ring.
        Only before the call joins a queue (IN_IVR): a queue's own DialBegin follows its
        AgentCalled, by which time the call is QUEUED."""
        ring_id = h.get("DestUniqueid", "")
        interface = h.get("DestChannel", "").rsplit("-", 1)[0]
        if not ring_id or not interface or ring_id in call.rings:
            return
        call.rings[ring_id] = Ring(ring_id, interface, "", None, direct=True)
        call.move(CallState.RINGING)
        at = _ts(h)
        self.emit(
            AgentRinging(call.server, call.linkedid, ring_id, interface, "", None, call.caller, at)
        )

    def _queue_join(self, server: str, h: Mapping[str, str]) -> None:
        call = self._live(server, h)
        # QUEUED without queued_at: the sticky agent did not answer and the ring was withdrawn.
        first_join = call is not None and call.queued_at is None
        if call is None or not first_join or call.state not in (CallState.IN_IVR, CallState.QUEUED):
            return
        call.queue = h.get("Queue") or call.queue
        call.queued_at = _ts(h)
        if call.state is CallState.IN_IVR:
            call.move(CallState.QUEUED)
        self.emit(CallQueued(server, call.linkedid, call.queue or "", _ts(h)))

    def _agent_called(self, server: str, h: Mapping[str, str]) -> None:
        call = self._live(server, h)
        ring_id = h.get("DestUniqueid", "")
        if call is None or not ring_id or ring_id in call.rings:
            return
        ring = Ring(ring_id, h.get("Interface", ""), h.get("MemberName", ""), h.get("Queue"))
        call.rings[ring_id] = ring
        if call.state is CallState.CONNECTED:
            ring.state = RingState.WITHDRAWN  # stale: somebody already answered
            return
        call.queue = call.queue or ring.queue
        call.move(CallState.RINGING)
        self.emit(
            AgentRinging(
                server,
                call.linkedid,
                ring_id,
                ring.interface,
                ring.member_name,
                ring.queue,
                call.caller,
                _ts(h),
            )
        )

    def _withdraw(self, call: TrackedCall, ring: Ring, reason: str, at: float) -> None:
        if ring.state is not RingState.RINGING:
            return
        ring.state = RingState.WITHDRAWN
        self.emit(
            RingWithdrawn(call.server, call.linkedid, ring.ring_id, ring.interface, reason, at)
        )
        if call.state is CallState.RINGING and not call.active_rings():
            call.move(CallState.QUEUED)

    def _dial_end(self, server: str, h: Mapping[str, str]) -> None:
        call = self._live(server, h)
        if call is not None and call.direction is Direction.OUTBOUND:
            self._outbound_answer(call, h)
        ring = call.rings.get(h.get("DestUniqueid", "")) if call else None
        if call is None or ring is None:
            return
        status = h.get("DialStatus", "")
        if status == "ANSWER":
            if ring.direct:  # no queue, so no AgentConnect: this is the answer
                self._answer(call, ring.ring_id, ring.interface, "", None, _ts(h))
            return  # a queue's AgentConnect is the answer; it names the queue member
        reason = (
            "answered-elsewhere"
            if call.state is CallState.CONNECTED
            else (
                "no-answer"
                if status in ("NOANSWER", "BUSY", "CHANUNAVAIL", "CONGESTION")
                else "cancelled"
            )
        )
        self._withdraw(call, ring, reason, _ts(h))

    def _outbound_answer(self, call: TrackedCall, h: Mapping[str, str]) -> None:
        if (
            h.get("DialStatus") == "ANSWER"
            and h.get("Context", "").startswith(OUTBOUND_CONTEXT)
            and call.answered_by is None
            and call.agent_interface
        ):
            call.answered_by = call.agent_interface
            call.move(CallState.CONNECTED)
            self.emit(
                CallAnswered(
                    call.server, call.linkedid, None, call.agent_interface, "", None, _ts(h)
                )
            )

    def _ring_no_answer(self, server: str, h: Mapping[str, str]) -> None:
        call = self._live(server, h)
        ring = call.rings.get(h.get("DestUniqueid", "")) if call else None
        if call is not None and ring is not None:
            self._withdraw(call, ring, "no-answer", _ts(h))

    def _agent_connect(self, server: str, h: Mapping[str, str]) -> None:
        call = self._live(server, h)
        if call is None:
            return
        self._answer(
            call,
            h.get("DestUniqueid", ""),
            h.get("Interface", ""),
            h.get("MemberName", ""),
            h.get("Queue") or call.queue,
            _ts(h),
        )

    def _answer(
        self,
        call: TrackedCall,
        ring_id: str,
        interface: str,
        member_name: str,
        queue: str | None,
        at: float,
    ) -> None:
        if call.answered_by is not None:
            return
        ring = call.rings.get(ring_id)
        if ring is not None:
            ring.state = RingState.ANSWERED
        call.answered_by = interface
        call.move(CallState.CONNECTED)
        call_answered = CallAnswered(
            call.server, call.linkedid, ring_id or None, interface, member_name, queue, at
        )
        self.emit(call_answered)
        for other in call.active_rings():
            self._withdraw(call, other, "answered-elsewhere", at)

    def _agent_complete(self, server: str, h: Mapping[str, str]) -> None:
        call = self._live(server, h)
        if call is not None and call.agent_left_at is None:
            call.agent_left_at = _ts(h)
            interface = h.get("Interface", "") or call.answered_by or ""
            queue = h.get("Queue") or call.queue
            member = h.get("MemberName", "")
            self.emit(AgentCompleted(call.server, call.linkedid, interface, member, queue, _ts(h)))

    def _abandon(self, server: str, h: Mapping[str, str]) -> None:
        call = self._live(server, h)
        if call is None:
            return
        call.abandoned = True
        for ring in call.active_rings():
            self._withdraw(call, ring, "caller-abandoned", _ts(h))

    def _transfer(self, server: str, h: Mapping[str, str]) -> None:
        for key in ("TransfererLinkedid", "TransfereeLinkedid", "Linkedid"):
            call = self.calls.get((server, h.get(key, "")))
            if call is not None and call.state is CallState.CONNECTED:
                call.transferred = True

    def _hangup(self, server: str, h: Mapping[str, str]) -> None:
        call = self._live(server, h)
        if call is None:
            return
        uniqueid, at = h.get("Uniqueid", ""), _ts(h)
        ring = call.rings.get(uniqueid)
        if ring is not None:  # an agent leg went away
            self._withdraw(call, ring, "cancelled", at)
            return
        if uniqueid == call.linkedid:
            self.end(call, self._outcome(call, h), at, reason=h.get("Cause-txt", ""))

    @staticmethod
    def _outcome(call: TrackedCall, h: Mapping[str, str]) -> Outcome:
        if call.answered_by is not None:
            return Outcome.TRANSFERRED if call.transferred else Outcome.ANSWERED
        if call.direction is Direction.OUTBOUND:
            return Outcome.FAILED
        if call.abandoned or not call.rings:
            return Outcome.ABANDONED
        return Outcome.MISSED

    def end(self, call: TrackedCall, outcome: Outcome, at: float, reason: str = "") -> None:
        if call.state is CallState.ENDED:
            return
        for ring in call.active_rings():
            self._withdraw(call, ring, "call-ended", at)
        call.move(CallState.ENDED)
        call.outcome = outcome
        self.emit(CallEnded(call.server, call.linkedid, outcome, at, reason, call.agent_left_at))

    def resync(self, server: str, live_linkedids: set[str], at: float | None = None) -> list[str]:
        """After a (re)connect: end every call the PBX no longer has. AMI has no replay, so
        this is how a call interrupted by an Asterisk restart stops being "in progress"."""
        ended = []
        for (srv, linkedid), call in list(self.calls.items()):
            if (
                srv == server
                and call.state is not CallState.ENDED
                and linkedid not in live_linkedids
            ):
                outcome = Outcome.ANSWERED if call.answered_by else Outcome.FAILED
                self.end(call, outcome, at or time.time(), reason="lost on PBX reconnect")
                ended.append(linkedid)
        return ended

    def forget_ended(self, keep: int = 10_000) -> None:
        """Bound memory: drop the oldest ended calls beyond `keep`."""
        ended = [k for k, c in self.calls.items() if c.state is CallState.ENDED]
        for key in ended[: max(0, len(ended) - keep)]:
            del self.calls[key]


def snapshot(call: TrackedCall) -> dict[str, Any]:
    return {
        "linkedid": call.linkedid,
        "state": call.state.value,
        "outcome": call.outcome.value if call.outcome else None,
        "queue": call.queue,
        "answered_by": call.answered_by,
        "recording": call.recording,
        "rings": {r.ring_id: (r.interface, r.state.value) for r in call.rings.values()},
    }
