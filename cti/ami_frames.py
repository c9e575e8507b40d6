"""AMI wire format: an incremental frame decoder and the parsed frame types.

No sockets here. The decoder is fed raw bytes as they come off the wire and yields complete
frames. Framing is done on *bytes* (a frame ends at CRLF CRLF, which can never occur inside a
multi-byte UTF-8 sequence) and each frame is decoded only once it is complete. A Chinese caller
name split across two TCP reads therefore always survives, whatever the split: this is the
incremental decoding panoramisk lacks (it decodes every chunk alone, dropping split bytes).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

TERMINATOR = b"\r\n\r\n"
BANNER_PREFIX = b"Asterisk Call Manager/"
DEFAULT_MAX_FRAME = 1 << 20  # Asterisk frames are a few KiB; 1 MiB leaves room for Command output

# Canonical spelling of the event names we route on. AMI names are case-sensitive on the wire
# and some modules have changed spelling between versions (e.g. NewCallerid); we compare on
# the canonical form so a handler never misses an event because of letter case.
_CANONICAL_EVENTS = [
    "AgentCalled",
    "AgentComplete",
    "AgentConnect",
    "AgentDump",
    "AgentLogin",
    "AgentLogoff",
    "AgentRingNoAnswer",
    "AGIExecEnd",
    "AGIExecStart",
    "AsyncAGIEnd",
    "AsyncAGIExec",
    "AsyncAGIStart",
    "AttendedTransfer",
    "BlindTransfer",
    "BridgeCreate",
    "BridgeDestroy",
    "BridgeEnter",
    "BridgeInfoChannel",
    "BridgeInfoComplete",
    "BridgeLeave",
    "BridgeMerge",
    "Cdr",
    "Cel",
    "ChannelHungup",
    "ChannelsHungupListComplete",
    "ContactStatus",
    "CoreShowChannel",
    "CoreShowChannelsComplete",
    "DeviceStateChange",
    "DeviceStateListComplete",
    "DialBegin",
    "DialEnd",
    "DialState",
    "DTMFBegin",
    "DTMFEnd",
    "ExtensionStatus",
    "FullyBooted",
    "Hangup",
    "HangupHandlerPop",
    "HangupHandlerPush",
    "HangupHandlerRun",
    "HangupRequest",
    "Hold",
    "LocalBridge",
    "LocalOptimizationBegin",
    "LocalOptimizationEnd",
    "MixMonitorMute",
    "MixMonitorStart",
    "MixMonitorStop",
    "MusicOnHoldStart",
    "MusicOnHoldStop",
    "NewAccountCode",
    "NewCallerid",
    "Newchannel",
    "NewConnectedLine",
    "Newexten",
    "Newstate",
    "OriginateResponse",
    "PeerStatus",
    "QueueCallerAbandon",
    "QueueCallerJoin",
    "QueueCallerLeave",
    "QueueEntry",
    "QueueMember",
    "QueueMemberAdded",
    "QueueMemberPause",
    "QueueMemberPenalty",
    "QueueMemberRemoved",
    "QueueMemberRinginuse",
    "QueueMemberStatus",
    "QueueParams",
    "QueueStatusComplete",
    "QueueSummary",
    "QueueSummaryComplete",
    "Registry",
    "Reload",
    "RTCPReceived",
    "RTCPSent",
    "Shutdown",
    "SoftHangupRequest",
    "Status",
    "StatusComplete",
    "SuccessfulAuth",
    "TestEvent",
    "Unhold",
    "UserEvent",
    "VarSet",
]
CANONICAL_EVENT_NAMES: Mapping[str, str] = {name.lower(): name for name in _CANONICAL_EVENTS}


def canonical_event_name(name: str) -> str:
    """The canonical spelling of a known event name; unknown names are kept as sent."""
    return CANONICAL_EVENT_NAMES.get(name.lower(), name)


class Headers(Mapping[str, str]):
    """Read-only AMI headers: first value wins, lookup falls back to case-insensitive.

    A header repeated in one frame (``ChanVariable``, Command ``Output``) keeps all its values
    for :meth:`getall`.
    """

    __slots__ = ("_lower", "_repeats", "_values")

    def __init__(self, values: dict[str, str], repeats: dict[str, list[str]] | None = None) -> None:
        self._values = values
        self._repeats = repeats
        self._lower: dict[str, str] | None = None

    def __getitem__(self, key: str) -> str:
        try:
            return self._values[key]
        except KeyError:
            if self._lower is None:
                self._lower = {k.lower(): v for k, v in reversed(self._values.items())}
            return self._lower[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Headers({self._values!r})"

    def getall(self, key: str) -> tuple[str, ...]:
        """Every value of a header, in wire order (empty when absent)."""
        for name in self._values:
            if name.lower() == key.lower():
                if self._repeats and name in self._repeats:
                    return tuple(self._repeats[name])
                return (self._values[name],)
        return ()


@dataclass(frozen=True, slots=True)
class AmiFrame:
    """One complete AMI frame: an event, a response, or the connection banner.

    ``kind`` is ``"event"``, ``"response"``, ``"banner"`` or ``"unknown"``. ``body`` holds the
    lines without a ``Key: value`` shape (old-style Command output, junk).
    """

    kind: str
    headers: Headers
    received_ns: int
    body: tuple[str, ...] = ()

    @property
    def event_name(self) -> str:
        return canonical_event_name(self.headers.get("Event", ""))

    @property
    def action_id(self) -> str | None:
        return self.headers.get("ActionID")


def decode_text(raw: bytes) -> str:
    """UTF-8, strictly when possible; otherwise with visible U+FFFD replacements (never dropped)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        log.warning("AMI frame is not valid UTF-8; undecodable bytes replaced")
        return raw.decode("utf-8", errors="replace")


def parse_frame(raw: bytes, received_ns: int) -> AmiFrame:
    """Parse the bytes of one frame (without its terminator)."""
    text = decode_text(raw)
    values: dict[str, str] = {}
    repeats: dict[str, list[str]] | None = None
    body: list[str] = []
    for line in text.split("\r\n"):
        key, sep, value = line.partition(":")
        if not sep or not key or " " in key:
            if line:
                body.append(line)
            continue
        if value.startswith(" "):
            value = value[1:]
        if key in values:
            if repeats is None:
                repeats = {}
            repeats.setdefault(key, [values[key]]).append(value)
        else:
            values[key] = value
    if "Event" in values:
        kind = "event"
    elif "Response" in values:
        kind = "response"
    else:
        kind = "unknown"
    return AmiFrame(kind, Headers(values, repeats), received_ns, tuple(body))


class FrameDecoder:
    """Incremental decoder: ``feed(chunk)`` returns the frames that chunk completed.

    The result does not depend on how the byte stream is split. A frame longer than
    ``max_frame`` bytes is skipped up to its terminator (counted in ``oversized``), so a broken
    or hostile peer cannot make us buffer without bound.
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self._buffer = bytearray()
        self._max_frame = max_frame
        self._discarding = False
        self.oversized = 0

    def feed(self, data: bytes, received_ns: int) -> list[AmiFrame]:
        buffer = self._buffer
        buffer += data
        frames: list[AmiFrame] = []
        start = 0
        while True:
            if self._discarding:
                end = buffer.find(TERMINATOR, start)
                if end < 0:
                    # keep a possible partial terminator at the tail
                    start = max(start, len(buffer) - len(TERMINATOR) + 1)
                    break
                self._discarding = False
                start = end + len(TERMINATOR)
                continue
            if buffer.startswith(BANNER_PREFIX, start):
                end = buffer.find(b"\r\n", start)
                if end < 0:
                    break
                banner = decode_text(bytes(buffer[start:end]))
                frames.append(AmiFrame("banner", Headers({"Banner": banner}), received_ns))
                start = end + 2
                continue
            end = buffer.find(TERMINATOR, start)
            if end < 0:
                if len(buffer) - start > self._max_frame:
                    self._start_discarding()
                    continue
                break
            if end - start > self._max_frame:
                self.oversized += 1
                log.warning(
                    "AMI frame of %d bytes skipped (limit %d)", end - start, self._max_frame
                )
            elif end > start:
                frames.append(parse_frame(bytes(buffer[start:end]), received_ns))
            start = end + len(TERMINATOR)
        del buffer[:start]
        return frames

    def _start_discarding(self) -> None:
        self.oversized += 1
        self._discarding = True
        log.warning("AMI frame over %d bytes without terminator: skipping it", self._max_frame)

    def reset(self) -> None:
        """Forget any partial frame (a new connection starts clean)."""
        self._buffer.clear()
        self._discarding = False
