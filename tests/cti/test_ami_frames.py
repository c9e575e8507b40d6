"""The AMI frame decoder and transcript replay: split-independence, UTF-8, junk, limits."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.ami_client import parse_transcript
from cti.ami_frames import AmiFrame, FrameDecoder, Headers, canonical_event_name, parse_frame
from cti.ami_replay import parse_frames

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"
TRANSCRIPTS = sorted(FIXTURES.glob("*.txt"))
RAW = {p.name: p.read_bytes() for p in TRANSCRIPTS}
NAME = "王小明".encode()


def _shape(frames: list[AmiFrame]) -> list[tuple[str, dict[str, str], tuple[str, ...]]]:
    return [(f.kind, dict(f.headers), f.body) for f in frames]


def _feed_in_pieces(data: bytes, cuts: list[int], max_frame: int = 1 << 20) -> list[AmiFrame]:
    decoder = FrameDecoder(max_frame)
    frames: list[AmiFrame] = []
    previous = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        frames += decoder.feed(data[previous:cut], 0)
        previous = cut
    return frames


def test_every_fixture_is_parsed_into_events_and_replies() -> None:
    assert len(TRANSCRIPTS) >= 7
    for path in TRANSCRIPTS:
        frames = parse_frames(RAW[path.name])
        kinds = {f.kind for f in frames}
        assert kinds <= {"banner", "event", "response"}, path.name
        assert frames[0].kind == "banner"
        assert frames[1].headers["Response"] == "Success"
        events = parse_transcript(path)
        assert events[0].name == "FullyBooted"
        assert all(e.server == "replay" for e in events)
        stamps = [e.received_ns for e in events]
        assert stamps == sorted(stamps)


def test_restart_transcript_has_shutdown_then_a_second_banner_and_boot() -> None:
    frames = parse_frames(RAW["asterisk_restart_mid_call.txt"])
    assert [f.kind for f in frames].count("banner") == 2
    names = [e.name for e in parse_transcript(RAW["asterisk_restart_mid_call.txt"])]
    assert names.count("FullyBooted") == 2
    assert names.index("Shutdown") < len(names) - 1 - names[::-1].index("FullyBooted")


def test_queue_call_order_matches_design() -> None:
    names = [e.name for e in parse_transcript(RAW["answered_queue_call.txt"])]
    order = ["QueueCallerJoin", "AgentCalled", "DialBegin", "AgentConnect", "Hangup"]
    positions = [names.index(n) for n in order]
    assert positions == sorted(positions)


def test_eventlist_items_are_not_events_but_originate_response_is() -> None:
    events = parse_transcript(RAW["click_to_dial_originate.txt"])
    names = [e.name for e in events]
    assert "ChannelHungup" not in names
    assert "ChannelsHungupListComplete" not in names
    assert "OriginateResponse" in names


def test_text_read_with_universal_newlines_replays_the_same() -> None:
    path = FIXTURES / "answered_queue_call.txt"
    from_text = parse_transcript(path.read_text(encoding="utf-8"))
    assert from_text == parse_transcript(path.read_bytes())


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(sorted(RAW)),
    cuts=st.lists(st.integers(min_value=0, max_value=60_000), max_size=40),
)
def test_any_split_of_a_real_transcript_gives_the_same_frames(name: str, cuts: list[int]) -> None:
    data = RAW[name]
    whole = FrameDecoder().feed(data, 0)
    assert _shape(_feed_in_pieces(data, [c % (len(data) + 1) for c in cuts])) == _shape(whole)


@settings(max_examples=20, deadline=None)
@given(name=st.sampled_from(sorted(RAW)), size=st.integers(min_value=1, max_value=7))
def test_tiny_reads_give_the_same_frames(name: str, size: int) -> None:
    data = RAW[name]
    decoder = FrameDecoder()
    frames: list[AmiFrame] = []
    for offset in range(0, len(data), size):
        frames += decoder.feed(data[offset : offset + size], 0)
    assert _shape(frames) == _shape(FrameDecoder().feed(data, 0))


@pytest.mark.parametrize("cut", range(1, len(NAME)))
def test_chinese_name_split_mid_character_survives(cut: int) -> None:
    frame = b"Event: Newchannel\r\nCallerIDName: " + NAME + b"\r\nUniqueid: 1.1\r\n\r\n"
    split = frame.index(NAME) + cut
    decoder = FrameDecoder()
    assert decoder.feed(frame[:split], 1) == []
    (event,) = decoder.feed(frame[split:], 2)
    assert event.headers["CallerIDName"] == "王小明"
    assert event.received_ns == 2  # the read that completed it


def test_invalid_utf8_is_replaced_visibly_not_dropped() -> None:
    (frame,) = FrameDecoder().feed(b"Event: VarSet\r\nValue: a\xff\xfeb\r\n\r\n", 0)
    assert frame.headers["Value"] == "a\ufffd\ufffdb"


def test_oversized_frame_is_skipped_and_the_next_one_survives() -> None:
    big = b"Event: Junk\r\nData: " + b"x" * 5000 + b"\r\n\r\n"
    good = b"Event: Hangup\r\nUniqueid: 1.2\r\n\r\n"
    for cuts in ([], [10], [100, 2000, 4000, 5030], list(range(0, 5100, 3))):
        decoder_frames = _feed_in_pieces(big + good, cuts, max_frame=1000)
        assert [f.event_name for f in decoder_frames] == ["Hangup"], cuts


def test_unterminated_flood_is_bounded() -> None:
    decoder = FrameDecoder(max_frame=1000)
    for _ in range(100):
        assert decoder.feed(b"y" * 999, 0) == []
    assert len(decoder._buffer) < 1000
    assert decoder.oversized == 1
    (frame,) = decoder.feed(b"\r\n\r\nEvent: Hold\r\n\r\n", 0)
    assert frame.event_name == "Hold"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.lists(st.integers(min_value=0, max_value=3000), max_size=8))
def test_garbage_never_raises(data: bytes, cuts: list[int]) -> None:
    frames = _feed_in_pieces(data, [c % (len(data) + 1) for c in cuts], max_frame=512)
    assert all(isinstance(f, AmiFrame) for f in frames)


def test_lines_without_a_colon_and_repeated_headers() -> None:
    frame = parse_frame(
        b"Response: Success\r\nMessage: Command output follows\r\n"
        b"Output: line one\r\nOutput: line: two\r\nno colon here\r\n",
        0,
    )
    assert frame.kind == "response"
    assert frame.headers["Output"] == "line one"
    assert isinstance(frame.headers, Headers)
    assert frame.headers.getall("output") == ("line one", "line: two")
    assert frame.body == ("no colon here",)


def test_event_names_and_header_keys_are_case_normalised() -> None:
    (frame,) = FrameDecoder().feed(b"Event: newchannel\r\nUniqueID: 7.1\r\n\r\n", 0)
    assert frame.event_name == "Newchannel"
    assert frame.headers["Uniqueid"] == "7.1"
    assert frame.headers.get("uniqueid") == "7.1"
    assert canonical_event_name("AGENTCALLED") == "AgentCalled"
    assert canonical_event_name("SomeFutureEvent") == "SomeFutureEvent"


def test_frame_without_event_or_response_is_unknown() -> None:
    (frame,) = FrameDecoder().feed(b"Foo: bar\r\n\r\n", 0)
    assert frame.kind == "unknown"
