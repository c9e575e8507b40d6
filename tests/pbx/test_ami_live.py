"""AmiClient against the real Asterisk: login, resync, a real SIPp queue call, a restart.

While developing, run with HOTLINE_TEST_PBX_INSTANCE=ami HOTLINE_TEST_PBX_OFFSET=33000 so this
does not restart a PBX another run is using.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from pbx_harness import CALLER_MOBILE, PbxUnderTest, Sipp, place_call, start_phone

from cti.ami_client import AmiClient, AmiEvent, ResyncSnapshot, servers_from_settings

pytestmark = [pytest.mark.pbx, pytest.mark.usefixtures("calls_cleared")]

CHINESE_NAME = "王小明"


class Seen:
    def __init__(self) -> None:
        self.events: list[AmiEvent] = []
        self.snapshots: list[ResyncSnapshot] = []

    def on_event(self, event: AmiEvent) -> None:
        self.events.append(event)

    def on_resync(self, server: str, snapshot: ResyncSnapshot) -> None:
        self.snapshots.append(snapshot)

    async def wait_for(
        self, predicate: Callable[[AmiEvent], bool], within: float = 60, start: int = 0
    ) -> AmiEvent:
        try:
            async with asyncio.timeout(within):
                while True:
                    for event in self.events[start:]:
                        if predicate(event):
                            return event
                    await asyncio.sleep(0.02)
        except TimeoutError:
            names = [(e.name, e.get("Channel")) for e in self.events[start:]][-60:]
            raise AssertionError(f"AMI event not seen within {within}s; last: {names}") from None

    async def until(self, condition: Callable[[], bool], within: float = 90) -> None:
        async with asyncio.timeout(within):
            while not condition():  # noqa: ASYNC110 - polling what the handlers recorded
                await asyncio.sleep(0.05)


@pytest.fixture
async def live(pbx: PbxUnderTest) -> AsyncIterator[tuple[AmiClient, Seen, str]]:
    seen = Seen()
    servers = servers_from_settings(pbx.settings)
    client = AmiClient(
        servers, seen.on_event, seen.on_resync, ping_interval=2, ping_timeout=5, backoff_max=2
    )
    await client.start()
    try:
        await client.wait_connected(servers[0].name, 60)
        await seen.until(lambda: len(seen.snapshots) >= 1, 60)
        yield client, seen, servers[0].name
    finally:
        await client.stop()


async def test_login_boot_and_list_actions_on_the_real_pbx(
    live: tuple[AmiClient, Seen, str],
) -> None:
    client, seen, name = live
    await seen.wait_for(lambda e: e.name == "FullyBooted")
    snapshot = seen.snapshots[0]
    assert snapshot.server == name
    assert snapshot.connection == 1
    assert {e["Queue"] for e in snapshot.queues if e.name == "QueueParams"} >= {"hotline", "vip"}

    queues = await client.action(name, {"Action": "QueueStatus", "Queue": "hotline"})
    members = {e["Name"] for e in queues.events if e.name == "QueueMember"}
    assert members >= {"zhang", "li"}
    channels = await client.action(name, {"Action": "CoreShowChannels"})
    assert channels.ok
    assert all(e.name == "CoreShowChannel" for e in channels.events)
    pong = await client.action(name, {"Action": "Ping"})
    assert pong.headers["Ping"] == "Pong"


async def test_a_real_queue_call_with_a_chinese_caller_name(
    live: tuple[AmiClient, Seen, str],
    pbx: PbxUnderTest,
    sipp_processes: list[Sipp],
    tmp_path: Path,
) -> None:
    client, seen, name = live
    sipp_processes.append(start_phone(pbx, "1001", 1000, tmp_path))
    sipp_processes.append(start_phone(pbx, "1002", None, tmp_path))
    start = len(seen.events)
    carrier = place_call(pbx, tmp_path, caller_name=CHINESE_NAME, hold_ms=14000)
    sipp_processes.append(carrier)

    first = await seen.wait_for(
        lambda e: e.name == "Newchannel" and e.get("Channel").startswith("PJSIP/carrier-"),
        start=start,
    )
    assert first["CallerIDName"] == CHINESE_NAME
    assert first["CallerIDNum"] == CALLER_MOBILE
    linkedid = first["Linkedid"]

    def of_call(event_name: str, **fields: str) -> Callable[[AmiEvent], bool]:
        return lambda e: (
            e.name == event_name
            and e.get("Linkedid") == linkedid
            and all(e.get(k) == v for k, v in fields.items())
        )

    called = await seen.wait_for(of_call("AgentCalled", Interface="PJSIP/1001"), start=start)
    assert called["MemberName"] == "zhang"
    connect = await seen.wait_for(of_call("AgentConnect"), start=start)
    hangup = await seen.wait_for(of_call("Hangup", Channel=first["Channel"]), start=start)
    order = [seen.events.index(e) for e in (first, called, connect, hangup)]
    assert order == sorted(order)
    assert all(e.server == name for e in seen.events[start:])
    assert await asyncio.to_thread(carrier.wait) == 0, carrier.errors()
    assert client.connections(name) == 1


async def test_client_reconnects_and_resyncs_after_an_asterisk_restart(
    live: tuple[AmiClient, Seen, str], pbx: PbxUnderTest
) -> None:
    client, seen, name = live
    start = len(seen.events)
    try:
        await asyncio.to_thread(pbx.stop)
        await seen.until(lambda: not client.connected(name))
    finally:
        await asyncio.to_thread(pbx.start)
    await client.wait_connected(name, 90)
    await seen.until(lambda: len(seen.snapshots) >= 2)
    assert client.connections(name) >= 2
    assert seen.snapshots[-1].connection == client.connections(name)
    # No Shutdown check: `core stop now` sometimes closes the session before writing it.
    await seen.wait_for(lambda e: e.name == "FullyBooted", start=start)
    assert {e["Queue"] for e in seen.snapshots[-1].queues if e.name == "QueueParams"} >= {"hotline"}
    assert (await client.action(name, {"Action": "Ping"})).ok
