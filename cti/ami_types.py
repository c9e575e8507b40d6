"""The typed values the AMI client hands out: servers, events, responses, resync snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cti.ami_frames import AmiFrame, Headers, canonical_event_name

SUCCESS_RESPONSES = frozenset({"Success", "Follows", "Goodbye"})


@dataclass(frozen=True)
class AmiServer:
    name: str
    host: str
    port: int
    username: str
    secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class AmiEvent:
    """One AMI event. ``name`` is the canonical spelling (see ``canonical_event_name``);
    ``headers`` look up case-insensitively; ``received_ns`` is ``time.monotonic_ns()`` when
    the event's last byte was read (for replayed transcripts: see ``ami_replay``)."""

    server: str
    name: str
    headers: Mapping[str, str]
    received_ns: int

    def get(self, key: str, default: str = "") -> str:
        return self.headers.get(key, default)

    def __getitem__(self, key: str) -> str:
        return self.headers[key]

    @classmethod
    def from_frame(cls, server: str, frame: AmiFrame) -> AmiEvent:
        name = canonical_event_name(frame.headers.get("Event", ""))
        return cls(server, name, frame.headers, frame.received_ns)


@dataclass(frozen=True, slots=True)
class AmiResponse:
    """The reply to one action. For an EventList action (``CoreShowChannels``, ``QueueStatus``,
    ...) ``events`` holds the list items, without the closing ``...Complete`` event."""

    server: str
    action: str
    action_id: str
    headers: Mapping[str, str]
    received_ns: int
    events: tuple[AmiEvent, ...] = ()

    @property
    def response(self) -> str:
        return self.headers.get("Response", "")

    @property
    def message(self) -> str:
        return self.headers.get("Message", "")

    @property
    def ok(self) -> bool:
        return self.response in SUCCESS_RESPONSES

    def getall(self, key: str) -> tuple[str, ...]:
        headers = self.headers
        if isinstance(headers, Headers):
            return headers.getall(key)
        value = headers.get(key)
        return () if value is None else (value,)


@dataclass(frozen=True, slots=True)
class ResyncSnapshot:
    """What Asterisk had right after a (re)connect: AMI has no replay, so this replaces it.

    ``channels`` are ``CoreShowChannel`` events; ``queues`` are the ``QueueParams``,
    ``QueueMember`` and ``QueueEntry`` events of ``QueueStatus``. ``connection`` counts the
    successful logins to this server (1 for the first). ``outage_ns``: how long the link was
    down before this login (None for the first one)."""

    server: str
    connection: int
    channels: tuple[AmiEvent, ...]
    queues: tuple[AmiEvent, ...]
    taken_ns: int
    outage_ns: int | None = None


@dataclass(frozen=True, slots=True)
class OriginateResult:
    """Asterisk accepted the Originate (``Async: true``: "Originate successfully queued").

    The outcome arrives later as an ``OriginateResponse`` event whose ``ActionID`` is
    ``action_id`` (``originate:<request_id>``)."""

    request_id: str
    server: str
    action_id: str
    response: AmiResponse
