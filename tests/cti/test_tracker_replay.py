"""The call tracker fed with real AMI transcripts captured from our Asterisk 22."""

from __future__ import annotations

from collections import Counter

import pytest
from ami_replay import TRANSCRIPTS, ReplayEvent, load
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.call_events import (
    AgentRinging,
    CallAnswered,
    CallEnded,
    CallStarted,
    Outcome,
    RecordingStarted,
    RingWithdrawn,
)
from cti.tracker import CallState, CallTracker, IllegalCallTransition, TrackedCall


def replay(events: list[ReplayEvent]) -> tuple[CallTracker, list[object]]:
    emitted: list[object] = []
    tracker = CallTracker(emitted.append)
    for event in events:
        tracker.handle("pbx1", event)
    return tracker, emitted


def of(kind: type, emitted: list[object]) -> list:  # type: ignore[type-arg]
    return [e for e in emitted if isinstance(e, kind)]


def test_answered_queue_call() -> None:
    tracker, emitted = replay(load("answered_queue_call"))
    (call,) = tracker.calls.values()
    assert call.state is CallState.ENDED and call.outcome is Outcome.ANSWERED
    started = of(CallStarted, emitted)[0]
    assert (started.caller, started.did, started.direction) == (
        "13905581234",
        "4008001234",
        "inbound",
    )
    (ring,) = of(AgentRinging, emitted)
    assert (ring.interface, ring.member_name, ring.queue) == ("PJSIP/1001", "zhang", "hotline")
    assert of(CallAnswered, emitted)[0].interface == "PJSIP/1001"
    assert of(RecordingStarted, emitted)[0].path.endswith(".wav")
    assert [type(e).__name__ for e in emitted][-1] == "CallEnded"
    assert of(RingWithdrawn, emitted) == []


def test_ringall_pops_both_and_withdraws_the_loser() -> None:
    _, emitted = replay(load("ringall_two_agents_one_answers"))
    rings = of(AgentRinging, emitted)
    assert len(rings) == 2
    (answered,) = of(CallAnswered, emitted)
    (withdrawn,) = of(RingWithdrawn, emitted)
    assert {answered.ring_id, withdrawn.ring_id} == {r.ring_id for r in rings}
    assert withdrawn.interface != answered.interface
    assert of(CallEnded, emitted)[0].outcome is Outcome.ANSWERED


def test_caller_abandons_in_queue() -> None:
    _, emitted = replay(load("caller_abandons_in_queue"))
    assert len(of(AgentRinging, emitted)) == 2
    assert len(of(RingWithdrawn, emitted)) == 2  # DialEnd CANCEL arrives twice per leg
    assert of(CallAnswered, emitted) == []
    assert of(CallEnded, emitted)[0].outcome is Outcome.ABANDONED


def test_ring_no_answer_then_next_agent() -> None:
    _, emitted = replay(load("ring_no_answer_then_next_agent"))
    first, second = of(AgentRinging, emitted)
    (withdrawn,) = of(RingWithdrawn, emitted)
    assert withdrawn.ring_id == first.ring_id and withdrawn.reason == "no-answer"
    assert of(CallAnswered, emitted)[0].ring_id == second.ring_id
    assert first.queue == "vip"


def test_click_to_dial_is_an_answered_outbound_call() -> None:
    _, emitted = replay(load("click_to_dial_originate"))
    (started,) = of(CallStarted, emitted)
    assert (started.direction, started.caller) == ("outbound", "13905581234")
    assert of(CallAnswered, emitted)[0].interface == "PJSIP/1001"
    assert of(CallEnded, emitted)[0].outcome is Outcome.ANSWERED
    # MixMonitor starts before the Dial, but the call log knows the call only once it has
    # started: the recording is announced after CallStarted, so its row gets the path.
    (recording,) = of(RecordingStarted, emitted)
    assert recording.path.endswith("-out-1795568702.11.wav")
    assert emitted.index(recording) > emitted.index(started)


def test_blind_transfer() -> None:
    _, emitted = replay(load("blind_transfer"))
    assert of(CallEnded, emitted)[0].outcome is Outcome.TRANSFERRED


def test_sticky_agent_dial_is_a_ring_and_its_answer_the_answer() -> None:
    """The dialplan's Dial to the owner raises no AgentCalled or AgentConnect."""
    tracker, emitted = replay(load("sticky_owner_answers"))
    (call,) = tracker.calls.values()
    assert call.state is CallState.ENDED and call.outcome is Outcome.ANSWERED
    (ring,) = of(AgentRinging, emitted)
    assert (ring.interface, ring.queue) == ("PJSIP/1002", None)
    (answered,) = of(CallAnswered, emitted)
    assert (answered.ring_id, answered.interface) == (ring.ring_id, "PJSIP/1002")
    assert call.answered_by == "PJSIP/1002" and of(RingWithdrawn, emitted) == []


def test_sticky_agent_rings_out_and_the_queue_answers() -> None:
    tracker, emitted = replay(load("sticky_owner_no_answer_then_queue"))
    (call,) = tracker.calls.values()
    assert call.outcome is Outcome.ANSWERED and call.queue == "hotline"
    assert call.queued_at is not None
    sticky, queued = of(AgentRinging, emitted)
    assert (sticky.interface, sticky.queue) == ("PJSIP/1002", None)
    assert (queued.interface, queued.queue) == ("PJSIP/1001", "hotline")
    (withdrawn,) = of(RingWithdrawn, emitted)
    assert (withdrawn.ring_id, withdrawn.reason) == (sticky.ring_id, "no-answer")
    (answered,) = of(CallAnswered, emitted)
    assert answered.interface == "PJSIP/1001" and answered.ring_id == queued.ring_id
    assert [type(e).__name__ for e in emitted].count("CallQueued") == 1


def test_restart_mid_call_leaves_nothing_in_progress() -> None:
    tracker, _ = replay(load("asterisk_restart_mid_call"))
    assert all(c.state is CallState.ENDED for c in tracker.calls.values())


def test_resync_ends_calls_the_pbx_lost() -> None:
    events = load("answered_queue_call")
    cut = next(i for i, e in enumerate(events) if e.name == "AgentConnect") + 1
    tracker, emitted = replay(events[:cut])
    (call,) = tracker.calls.values()
    assert call.state is CallState.CONNECTED
    assert tracker.resync("pbx1", live_linkedids=set()) == [call.linkedid]
    assert of(CallEnded, emitted)[-1].outcome is Outcome.ANSWERED
    assert tracker.resync("pbx1", set()) == []  # nothing twice


def test_an_ended_call_rejects_further_moves() -> None:
    tracker, _ = replay(load("answered_queue_call"))
    (call,) = tracker.calls.values()
    with pytest.raises(IllegalCallTransition):
        call.move(CallState.RINGING)


def invariants(tracker: CallTracker, emitted: list[object]) -> None:
    ended = Counter(e.linkedid for e in of(CallEnded, emitted))
    assert all(n == 1 for n in ended.values()), ended
    ring_ids = [e.ring_id for e in of(AgentRinging, emitted)]
    assert len(ring_ids) == len(set(ring_ids))
    withdrawn = [e.ring_id for e in of(RingWithdrawn, emitted)]
    assert len(withdrawn) == len(set(withdrawn)) and set(withdrawn) <= set(ring_ids)
    answers = Counter(e.linkedid for e in of(CallAnswered, emitted))
    assert all(n == 1 for n in answers.values())
    for call in tracker.calls.values():
        assert isinstance(call, TrackedCall)
        if call.state is CallState.ENDED:
            assert call.outcome is not None


@pytest.mark.parametrize("name", TRANSCRIPTS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_duplicates_change_nothing(name: str, data: st.DataObject) -> None:
    events = load(name)
    _, expected = replay(events)
    doubled: list[ReplayEvent] = []
    for event in events:
        doubled.append(event)
        if data.draw(st.booleans()):
            doubled.append(event)
    tracker, emitted = replay(doubled)
    assert emitted == expected
    invariants(tracker, emitted)


@pytest.mark.parametrize("name", TRANSCRIPTS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_shuffled_and_duplicated_events_keep_the_invariants(name: str, data: st.DataObject) -> None:
    events = load(name)
    mixed = data.draw(
        st.permutations(events + data.draw(st.lists(st.sampled_from(events), max_size=len(events))))
    )
    tracker, emitted = replay(list(mixed))
    invariants(tracker, emitted)
