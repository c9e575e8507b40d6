"""The per-server event pump: events are handled in wire order, at once when the pump is idle
(inside the reader's callback, no queue hop), and queued behind anything still in progress."""

from __future__ import annotations

import asyncio
import time

from cti.ami_pump import EAGER_PER_TURN, EventPump, ResyncSlot
from cti.ami_types import AmiEvent, ResyncSnapshot


def event(name: str) -> AmiEvent:
    return AmiEvent("pbx", name, {"Event": name}, time.monotonic_ns())


async def settle(pump: EventPump) -> None:
    """Until every event put so far has been handled (or failed)."""
    for _ in range(1000):
        if pump.idle:
            return
        await asyncio.sleep(0.001)
    raise AssertionError("pump did not drain")


async def test_an_event_for_an_idle_pump_is_handled_before_put_returns() -> None:
    seen: list[str] = []

    async def handler(e: AmiEvent) -> None:
        seen.append(e.name)

    pump = EventPump("pbx", handler, None)
    pump.start()
    await asyncio.sleep(0)  # the consumer is now waiting for work
    pump.put(event("AgentCalled"))
    assert seen == ["AgentCalled"]
    assert pump.handled == 1
    await pump.stop()


async def test_a_handler_that_waits_holds_back_later_events_in_wire_order() -> None:
    gate = asyncio.Event()
    seen: list[str] = []

    async def handler(e: AmiEvent) -> None:
        seen.append(e.name)
        if e.name == "AgentCalled":
            await gate.wait()
            seen.append("AgentCalled done")

    pump = EventPump("pbx", handler, None)
    pump.start()
    await asyncio.sleep(0)
    for name in ("AgentCalled", "AgentConnect", "Hangup"):
        pump.put(event(name))
    await asyncio.sleep(0.01)
    assert seen == ["AgentCalled"]  # the rest wait for it
    gate.set()
    await settle(pump)
    assert seen == ["AgentCalled", "AgentCalled done", "AgentConnect", "Hangup"]
    await pump.stop()


async def test_a_raising_handler_is_counted_and_the_next_event_still_runs() -> None:
    seen: list[str] = []

    async def handler(e: AmiEvent) -> None:
        if e.name == "Bad":
            raise ValueError("broken handler")
        seen.append(e.name)

    pump = EventPump("pbx", handler, None)
    pump.start()
    await asyncio.sleep(0)
    pump.put(event("Bad"))
    pump.put(event("Hangup"))
    await settle(pump)
    assert seen == ["Hangup"]
    assert pump.handler_errors == 1


async def test_a_handler_failing_after_it_waited_is_counted_too() -> None:
    async def handler(e: AmiEvent) -> None:
        await asyncio.sleep(0.001)
        raise ValueError("broken later")

    pump = EventPump("pbx", handler, None)
    pump.start()
    await asyncio.sleep(0)
    pump.put(event("AgentCalled"))
    pump.put(event("Hangup"))
    await settle(pump)
    await asyncio.sleep(0.01)
    assert pump.handler_errors == 2
    await pump.stop()


async def test_events_after_a_resync_slot_wait_for_its_snapshot() -> None:
    order: list[str] = []

    async def on_event(e: AmiEvent) -> None:
        order.append(e.name)

    async def on_resync(server: str, snapshot: ResyncSnapshot) -> None:
        order.append("resync")

    pump = EventPump("pbx", on_event, on_resync)
    pump.start()
    await asyncio.sleep(0)
    slot = ResyncSlot()
    pump.put(slot)
    pump.put(event("Newchannel"))
    await asyncio.sleep(0.01)
    assert order == []
    slot.fill(ResyncSnapshot("pbx", 1, (), (), time.monotonic_ns()))
    await settle(pump)
    assert order == ["resync", "Newchannel"]
    await pump.stop()


async def test_a_burst_is_handled_in_order_without_holding_the_loop_for_all_of_it() -> None:
    seen: list[int] = []

    async def handler(e: AmiEvent) -> None:
        seen.append(int(e.name[1:]))

    pump = EventPump("pbx", handler, None)
    pump.start()
    await asyncio.sleep(0)
    burst = 3 * EAGER_PER_TURN
    for number in range(burst):  # one read's worth of frames, all in one callback
        pump.put(event(f"E{number}"))
    assert len(seen) == EAGER_PER_TURN  # the rest are queued for the consumer task
    await settle(pump)
    assert seen == list(range(burst))
    await pump.stop()


async def test_stop_ends_a_handler_that_is_still_waiting() -> None:
    cleaned_up = asyncio.Event()

    async def handler(e: AmiEvent) -> None:
        try:
            await asyncio.Event().wait()  # never set
        finally:
            cleaned_up.set()

    pump = EventPump("pbx", handler, None)
    pump.start()
    await asyncio.sleep(0)
    pump.put(event("AgentCalled"))
    await asyncio.sleep(0.01)
    await pump.stop()
    assert cleaned_up.is_set()
