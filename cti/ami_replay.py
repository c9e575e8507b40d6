"""Replay recorded AMI transcripts (tests/fixtures/ami/*.txt) as the client would see them."""

from __future__ import annotations

import contextlib
from pathlib import Path

from cti.ami_frames import AmiFrame, FrameDecoder
from cti.ami_types import AmiEvent


def _wire_bytes(data: bytes | str) -> bytes:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if b"\r\n" not in raw:
        # read with universal newlines (Path.read_text): put the CRLFs back
        raw = raw.replace(b"\n", b"\r\n")
    return raw


def parse_frames(data: bytes | str) -> list[AmiFrame]:
    """Every frame of a raw AMI byte stream (banners, responses, events), in order."""
    decoder = FrameDecoder()
    return decoder.feed(_wire_bytes(data), 0)


def parse_transcript(data: bytes | str | Path, server: str = "replay") -> list[AmiEvent]:
    """The events of a transcript, in wire order, exactly as ``AmiClient`` hands them out.

    Give it the raw bytes (``path.read_bytes()``), a ``Path``, or text. Replies to actions
    (and EventList items, which carry an ``ActionID``) are not events and are left out.
    ``received_ns`` is synthetic: the event's ``Timestamp`` header in nanoseconds when it has
    one, otherwise the previous event's value (0 before the first), so it never decreases.
    """
    if isinstance(data, Path):
        data = data.read_bytes()
    events: list[AmiEvent] = []
    received_ns = 0
    open_lists: set[str] = set()
    for frame in parse_frames(data):
        if _is_list_item(frame, open_lists):
            continue
        stamp = frame.headers.get("Timestamp")
        if stamp:
            with contextlib.suppress(ValueError):
                received_ns = max(received_ns, int(float(stamp) * 1_000_000_000))
        events.append(AmiEvent.from_frame(server, frame))
        if events[-1].received_ns != received_ns:
            events[-1] = AmiEvent(server, events[-1].name, frame.headers, received_ns)
    return events


def _is_list_item(frame: AmiFrame, open_lists: set[str]) -> bool:
    """Mirror of the client's routing: responses and EventList items are not events."""
    action_id = frame.action_id or ""
    if frame.kind == "response":
        headers = frame.headers
        if headers.get("EventList", "").lower() == "start" or headers.get("Message", "").endswith(
            "will follow"
        ):
            open_lists.add(action_id)
        return True
    if frame.kind != "event":
        return True
    if action_id in open_lists:
        if frame.headers.get("EventList", "").lower() == "complete" or frame.event_name.endswith(
            "Complete"
        ):
            open_lists.discard(action_id)
        return True
    return False
