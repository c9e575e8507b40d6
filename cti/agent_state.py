"""Live agent state per queue, kept from QueueMember* events and the QueueStatus resync."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

# Asterisk's AST_DEVICE_* codes as QueueMemberStatus reports them.
DEVICE_STATES = {
    "0": "unknown",
    "1": "available",
    "2": "busy",
    "3": "busy",
    "4": "invalid",
    "5": "unavailable",
    "6": "ringing",
    "7": "ringing",
    "8": "on_hold",
}
MEMBER_EVENTS = frozenset(
    {
        "QueueMemberStatus",
        "QueueMemberPause",
        "QueueMemberAdded",
        "QueueMemberRemoved",
        "QueueMember",
    }
)
# The pause reason our wrap-up extension uses (cti/wrapup.py): an agent paused with it is in
# after-call work, not on a break.
WRAPUP_REASON = "话后处理"


@dataclass
class MemberState:
    queue: str
    interface: str
    member_name: str
    device: str
    paused: bool
    pause_reason: str
    calls_taken: int
    since: float  # when the state last changed (epoch)
    wrapup_until: float | None = None  # epoch; set by the wrap-up service (cti/wrapup.py)

    @property
    def state(self) -> str:
        """A break (any other pause) outranks wrap-up; wrap-up shows while the phone is idle."""
        if self.paused and self.pause_reason != WRAPUP_REASON:
            return "paused"
        in_wrapup = self.wrapup_until is not None and time.time() < self.wrapup_until
        if in_wrapup and self.device in ("available", "unknown"):
            return "wrapup"
        return "paused" if self.paused else self.device

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "state": self.state}


class AgentStates:
    def __init__(self) -> None:
        self.members: dict[tuple[str, str, str], MemberState] = {}  # server, queue, interface
        self.wrapups: dict[str, float] = {}  # interface -> when its wrap-up ends (epoch)

    def apply(self, server: str, name: str, h: Mapping[str, str]) -> MemberState | None:
        """Update from one event; return the member if its visible state changed."""
        if name not in MEMBER_EVENTS:
            return None
        key = (server, h.get("Queue", ""), h.get("Interface") or h.get("Location", ""))
        if name == "QueueMemberRemoved":
            return self.members.pop(key, None)
        old = self.members.get(key)
        new = MemberState(
            queue=key[1],
            interface=key[2],
            member_name=h.get("MemberName") or h.get("Name", ""),
            device=DEVICE_STATES.get(h.get("Status", "0"), "unknown"),
            paused=h.get("Paused") == "1",
            pause_reason=h.get("PausedReason", ""),
            calls_taken=int(h.get("CallsTaken", "0") or 0),
            since=time.time(),
            wrapup_until=self.wrapups.get(key[2]),
        )
        if old is not None and (old.device, old.paused, old.pause_reason) == (
            new.device,
            new.paused,
            new.pause_reason,
        ):
            old.calls_taken = new.calls_taken
            return None
        self.members[key] = new
        return new

    def resync(self, server: str, queue_events: Iterable[Any]) -> None:
        for key in [k for k in self.members if k[0] == server]:
            del self.members[key]
        for event in queue_events:
            if event.name == "QueueMember":
                self.apply(server, "QueueMember", event.headers)

    def set_wrapup(self, interface: str, until: float | None) -> None:
        """The agent on `interface` is in wrap-up until `until` (None: no longer)."""
        if until is None:
            self.wrapups.pop(interface, None)
        else:
            self.wrapups[interface] = until
        for member in self.for_interface(interface):
            member.wrapup_until = until
            member.since = time.time()

    def wrapup_pause(self, interface: str) -> bool | None:
        """Is the phone paused for wrap-up (True), otherwise paused or not (False)? None when
        no queue state is known yet (before the first resync)."""
        members = self.for_interface(interface)
        if not members:
            return None
        return any(m.paused and m.pause_reason == WRAPUP_REASON for m in members)

    def paused_otherwise(self, interface: str) -> bool:
        """Paused for another reason (a break, logged out): wrap-up must not touch it."""
        return any(
            m.paused and m.pause_reason != WRAPUP_REASON for m in self.for_interface(interface)
        )

    def for_interface(self, interface: str) -> list[MemberState]:
        return [m for (_, _, i), m in self.members.items() if i == interface]

    def can_take_direct_call(self, interface: str) -> bool:
        """Should the dialplan ring this agent directly (sticky agent)? Only when logged in to
        some queue, not paused and not on another call; anything else goes to the queue."""
        return any(
            not m.paused and m.device in ("available", "unknown")
            for m in self.for_interface(interface)
        )

    def all(self) -> list[MemberState]:
        return sorted(self.members.values(), key=lambda m: (m.queue, m.member_name))
