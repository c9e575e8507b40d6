"""AmiClient against a loopback fake AMI server: faults injected on purpose.

The fake speaks just enough AMI (banner, Login, Ping, CoreShowChannels, QueueStatus,
Originate, Logoff) and lets a test misbehave: split writes, junk, silence, hang-ups.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from crm_core.errors import HotlineError
from crm_core.settings import Settings
from cti.ami_client import (
    AmiActionFailed,
    AmiActionTimeout,
    AmiClient,
    AmiConnectionLost,
    AmiEvent,
    AmiInvalidAction,
    AmiNotConnected,
    AmiServer,
    AmiUnknownServer,
    ResyncSnapshot,
    parse_transcript,
    servers_from_settings,
)
from cti.ami_frames import FrameDecoder
from cti.ami_link import backoff_delay

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"
SECRET = "fake-secret"


def frame(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class FakeAmi:
    """A loopback AMI server. Every action received is kept per connection in `actions`."""

    def __init__(self) -> None:
        self.answer_pings = True
        self.hang_up_on: set[str] = set()  # actions that make the fake drop the link, unanswered
        self.ignore: set[str] = set()  # actions never answered
        self.channels = ["PJSIP/carrier-00000001"]
        self.actions: list[list[dict[str, str]]] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.drop()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self.server.wait_closed()
            self.server = None

    def server_config(self, name: str = "fake") -> AmiServer:
        return AmiServer(name, "127.0.0.1", self.port, "hotline", SECRET)

    def count(self, action: str) -> int:
        return sum(a["Action"] == action for conn in self.actions for a in conn)

    def drop(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    async def send(self, *chunks: bytes, pause: float = 0.05) -> None:
        """Write to the newest connection, one TCP write per chunk."""
        writer = self.writers[-1]
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(pause)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        received: list[dict[str, str]] = []
        self.actions.append(received)
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        decoder = FrameDecoder()
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                for item in decoder.feed(data, 0):
                    action = dict(item.headers)
                    action["Variables"] = "|".join(item.headers.getall("Variable"))
                    received.append(action)
                    if action["Action"] in self.hang_up_on:
                        writer.transport.abort()
                        return
                    if action["Action"] not in self.ignore:
                        writer.write(self._reply(action))
        writer.close()

    def _reply(self, action: dict[str, str]) -> bytes:
        aid = f"ActionID: {action.get('ActionID', '')}"
        name = action["Action"]
        if name == "Login":
            if action.get("Secret") != SECRET:
                return frame("Response: Error", aid, "Message: Authentication failed")
            booted = frame("Event: FullyBooted", "Privilege: system,all", "Status: Fully Booted")
            return frame("Response: Success", aid, "Message: Authentication accepted") + booted
        if name == "Ping":
            return frame("Response: Success", aid, "Ping: Pong") if self.answer_pings else b""
        if name == "CoreShowChannels":
            items = b"".join(
                frame("Event: CoreShowChannel", aid, f"Channel: {c}", "Linkedid: 1.1")
                for c in self.channels
            )
            head = frame(
                "Response: Success", aid, "EventList: start", "Message: Channels will follow"
            )
            done = frame("Event: CoreShowChannelsComplete", aid, "EventList: Complete",
                         f"ListItems: {len(self.channels)}")  # fmt: skip
            return head + items + done
        if name == "QueueStatus":
            return (
                frame(
                    "Response: Success",
                    aid,
                    "EventList: start",
                    "Message: Queue status will follow",
                )
                + frame("Event: QueueParams", aid, "Queue: hotline", "Calls: 0")
                + frame("Event: QueueMember", aid, "Queue: hotline", "Name: zhang", "Paused: 0")
                + frame("Event: QueueStatusComplete", aid, "EventList: Complete", "ListItems: 2")
            )
        if name == "Originate":
            return frame("Response: Success", aid, "Message: Originate successfully queued")
        if name == "Logoff":
            return frame("Response: Goodbye", aid, "Message: Thanks for all the fish.")
        return frame("Response: Error", aid, "Message: Invalid/unknown command")


class Recorder:
    def __init__(self) -> None:
        self.events: list[AmiEvent] = []
        self.snapshots: list[ResyncSnapshot] = []
        self.order: list[str] = []  # "resync" or event names, as handled

    def on_event(self, event: AmiEvent) -> None:
        self.events.append(event)
        self.order.append(event.name)

    def on_resync(self, server: str, snapshot: ResyncSnapshot) -> None:
        assert server == snapshot.server
        self.snapshots.append(snapshot)
        self.order.append("resync")

    def names(self) -> list[str]:
        return [e.name for e in self.events]


async def until(predicate: Callable[[], bool], within: float = 20.0) -> None:
    """Poll for a condition; the bound only stops a broken test from hanging."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - the conditions are plain lists and flags
            await asyncio.sleep(0.01)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAmi]:
    server = FakeAmi()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@contextlib.asynccontextmanager
async def running(
    client: AmiClient, *servers: str, resynced: Recorder | None = None
) -> AsyncIterator[AmiClient]:
    """Start, wait for the login (and the first resync: the fake must not write a test's
    half frame while its own resync reply is still to come; Asterisk never interleaves)."""
    await client.start()
    try:
        for name in servers:
            await client.wait_connected(name, 20)
        if resynced is not None:
            await until(lambda: len(resynced.snapshots) >= 1)
        yield client
    finally:
        await client.stop()


def make_client(fake: FakeAmi, recorder: Recorder, **options: float) -> AmiClient:
    return AmiClient(
        [fake.server_config()],
        recorder.on_event,
        recorder.on_resync,
        **{"ping_interval": 30.0, "backoff_max": 0.5, "backoff_initial": 0.05, **options},  # type: ignore[arg-type]
    )


async def test_connects_logs_in_resyncs_and_delivers_events(
    fake: FakeAmi, recorder: Recorder
) -> None:
    async with running(make_client(fake, recorder), "fake", resynced=recorder) as client:
        await until(lambda: len(recorder.snapshots) == 1)
        await fake.send(frame("Event: Newchannel", "Uniqueid: 9.1", "Linkedid: 9.1"))
        await until(lambda: "Newchannel" in recorder.names())
        assert client.connected("fake")
        assert client.connections("fake") == 1
    snapshot = recorder.snapshots[0]
    assert snapshot.connection == 1 and snapshot.outage_ns is None  # nothing was lost yet
    assert [c["Channel"] for c in snapshot.channels] == ["PJSIP/carrier-00000001"]
    assert [q.name for q in snapshot.queues] == ["QueueParams", "QueueMember"]
    assert recorder.order[:2] == ["FullyBooted", "resync"]
    event = recorder.events[-1]
    assert (event.server, event["Uniqueid"], event.get("Missing", "-")) == ("fake", "9.1", "-")
    assert fake.count("Logoff") == 1


async def test_chinese_caller_name_split_mid_character_across_reads(
    fake: FakeAmi, recorder: Recorder
) -> None:
    data = frame("Event: Newchannel", "CallerIDName: 王小明", "Uniqueid: 1.5")
    cut = data.index("王".encode()) + 1
    async with running(make_client(fake, recorder), "fake", resynced=recorder):
        await fake.send(data[:cut], data[cut:], pause=0.2)
        await until(lambda: "Newchannel" in recorder.names())
    assert recorder.events[-1]["CallerIDName"] == "王小明"


async def test_raising_handler_loses_neither_link_nor_rest_of_chunk(fake: FakeAmi) -> None:
    seen: list[str] = []

    async def flaky(event: AmiEvent) -> None:
        seen.append(event.get("Uniqueid"))
        if event.get("Uniqueid") == "1":
            raise RuntimeError("handler bug")
        if event.get("Uniqueid") == "2":
            raise KeyError("another bug")

    client = AmiClient([fake.server_config()], flaky, ping_interval=30)
    async with running(client, "fake"):
        chunk = b"".join(frame("Event: Hangup", f"Uniqueid: {n}") for n in (1, 2, 3))
        await fake.send(chunk)
        await until(lambda: "3" in seen)
        assert (await client.action("fake", {"Action": "Ping"})).headers["Ping"] == "Pong"
        assert client.connections("fake") == 1
    assert seen[-3:] == ["1", "2", "3"]


async def test_sync_raising_handler_is_guarded_too(fake: FakeAmi) -> None:
    seen: list[str] = []

    def flaky(event: AmiEvent) -> None:
        seen.append(event.name)
        raise ValueError("sync bug")

    async with running(AmiClient([fake.server_config()], flaky, ping_interval=30), "fake") as c:
        await fake.send(frame("Event: Hold", "Uniqueid: 1") + frame("Event: Unhold", "Uniqueid: 1"))
        await until(lambda: "Unhold" in seen)
        assert c.connections("fake") == 1


async def test_half_open_link_is_noticed_by_the_ping_watchdog(
    fake: FakeAmi, recorder: Recorder
) -> None:
    client = make_client(fake, recorder, ping_interval=0.2, ping_timeout=0.3)
    async with running(client, "fake", resynced=recorder):
        fake.answer_pings = False  # the socket stays open, nothing comes back
        await until(lambda: client.connections("fake") >= 2)
        fake.answer_pings = True
        await client.wait_connected("fake", 20)
        await until(lambda: len(recorder.snapshots) >= 2)
    assert len(fake.actions) >= 2


async def test_server_close_reconnects_with_backoff_and_resyncs_again(
    fake: FakeAmi, recorder: Recorder
) -> None:
    client = make_client(fake, recorder)
    async with running(client, "fake", resynced=recorder):
        await until(lambda: len(recorder.snapshots) == 1)
        fake.channels = ["PJSIP/carrier-00000002", "PJSIP/1001-00000003"]
        fake.drop()
        await until(lambda: len(recorder.snapshots) == 2)
        assert client.connected("fake")
    second = recorder.snapshots[1]
    assert second.connection == 2
    # From the drop to the new snapshot: the outage the bridge recovers calls from.
    assert second.outage_ns is not None and 0 < second.outage_ns < 60 * 10**9
    assert [c["Channel"] for c in second.channels] == fake.channels
    # nothing from the first connection was sent again on the second
    assert [a["Action"] for a in fake.actions[1]][:3] == [
        "Login",
        "CoreShowChannels",
        "QueueStatus",
    ]


async def test_server_gone_for_a_while_then_back_on_the_same_port(
    fake: FakeAmi, recorder: Recorder
) -> None:
    client = make_client(fake, recorder)
    async with running(client, "fake", resynced=recorder):
        await fake.stop()
        await until(lambda: not client.connected("fake"))
        with pytest.raises(AmiNotConnected):
            await client.action("fake", {"Action": "Ping"})
        await asyncio.sleep(0.5)  # a few refused connects, backing off
        await fake.start()
        await client.wait_connected("fake", 20)
        await until(lambda: len(recorder.snapshots) == 2)


async def test_action_while_disconnected_fails_at_once_with_a_typed_error(
    recorder: Recorder,
) -> None:
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = AmiServer("down", "127.0.0.1", port, "hotline", SECRET)
    client = AmiClient([server], recorder.on_event, recorder.on_resync, action_timeout=30)
    with pytest.raises(AmiNotConnected):  # not started yet
        await client.action("down", {"Action": "Ping"})
    await client.start()
    try:
        async with asyncio.timeout(10):  # guards against a hang; the error comes at once
            with pytest.raises(AmiNotConnected) as caught:
                await client.action("down", {"Action": "Ping"})
            with pytest.raises(AmiNotConnected):
                await client.originate(
                    "down", channel="PJSIP/1001", context="c", exten="1", request_id="r1"
                )
            with pytest.raises(AmiNotConnected):
                await client.wait_connected("down", 0.2)
        assert isinstance(caught.value, HotlineError)
        assert caught.value.error_id == "ami_not_connected"
        with pytest.raises(AmiUnknownServer):
            await client.action("nope", {"Action": "Ping"})
    finally:
        await client.stop()


async def test_unanswered_action_times_out(fake: FakeAmi, recorder: Recorder) -> None:
    fake.ignore.add("Status")
    async with running(make_client(fake, recorder), "fake", resynced=recorder) as client:
        with pytest.raises(AmiActionTimeout) as caught:
            await client.action("fake", {"Action": "Status"}, timeout=0.3)
        assert caught.value.details["action"] == "Status"
        assert client.connected("fake")
        with pytest.raises(AmiActionFailed):
            await client.action("fake", {"Action": "NoSuchThing"})


async def test_originate_is_never_resent_after_a_reconnect(
    fake: FakeAmi, recorder: Recorder
) -> None:
    fake.hang_up_on.add("Originate")  # the link dies with the Originate in flight
    client = make_client(fake, recorder)
    async with running(client, "fake", resynced=recorder):
        with pytest.raises(AmiConnectionLost):
            await client.originate(
                "fake", channel="PJSIP/1001", context="hotline-outbound", exten="13905581234",
                request_id="click-1",
            )  # fmt: skip
        await until(lambda: len(recorder.snapshots) == 2)  # reconnected and resynced
        await client.action("fake", {"Action": "Ping"})
        # the same request again: the first outcome, no second dial
        with pytest.raises(AmiConnectionLost):
            await client.originate(
                "fake", channel="PJSIP/1001", context="hotline-outbound", exten="13905581234",
                request_id="click-1",
            )  # fmt: skip
    assert fake.count("Originate") == 1
    assert "Originate" not in [a["Action"] for a in fake.actions[1]]


async def test_originate_is_idempotent_per_request_id(fake: FakeAmi, recorder: Recorder) -> None:
    async with running(make_client(fake, recorder), "fake", resynced=recorder) as client:

        def dial(request_id: str) -> asyncio.Task[object]:
            return asyncio.ensure_future(
                client.originate(
                    "fake",
                    channel="PJSIP/1001",
                    context="hotline-outbound",
                    exten="13905581234",
                    request_id=request_id,
                    caller_id="王小明 <4008001234>",
                    variables={"HOTLINE_SR": "SR-1", "NOTE": "a,b=c"},
                    ring_timeout=20,
                )
            )

        first, again = await asyncio.gather(dial("req-1"), dial("req-1"))
        later = await dial("req-1")
        other = await dial("req-2")
    assert first is again is later
    assert other is not first
    assert fake.count("Originate") == 2
    sent = next(a for conn in fake.actions for a in conn if a["Action"] == "Originate")
    assert sent["ActionID"] == "originate:req-1"
    assert sent["Async"] == "true"
    assert sent["Timeout"] == "20000"
    assert sent["CallerID"] == "王小明 <4008001234>"
    assert sent["Variables"] == "HOTLINE_SR=SR-1|NOTE=a,b=c"


async def test_originate_refused_while_down_may_be_retried(
    fake: FakeAmi, recorder: Recorder
) -> None:
    client = make_client(fake, recorder)
    args = {"channel": "PJSIP/1001", "context": "c", "exten": "1", "request_id": "req-9"}
    with pytest.raises(AmiNotConnected):
        await client.originate("fake", **args)  # type: ignore[arg-type]
    async with running(client, "fake", resynced=recorder):
        result = await client.originate("fake", **args)  # type: ignore[arg-type]
    assert result.action_id == "originate:req-9"
    assert result.response.message == "Originate successfully queued"
    assert fake.count("Originate") == 1


async def test_header_injection_is_refused_and_nothing_is_sent(
    fake: FakeAmi, recorder: Recorder
) -> None:
    async with running(make_client(fake, recorder), "fake", resynced=recorder) as client:
        with pytest.raises(AmiInvalidAction):
            await client.originate(
                "fake", channel="PJSIP/1001", context="c", exten="1\r\nAction: Hangup",
                request_id="evil",
            )  # fmt: skip
        with pytest.raises(AmiInvalidAction):
            await client.action("fake", {"Action": "Ping", "Bad Key": "x"})
        with pytest.raises(AmiInvalidAction):
            await client.action("fake", {"Channel": "x"})
    assert fake.count("Originate") == 0
    assert fake.count("Hangup") == 0


async def test_garbage_and_oversized_frames_do_not_crash_the_client(
    fake: FakeAmi, recorder: Recorder
) -> None:
    client = make_client(fake, recorder, max_frame=2000)
    junk = random.Random(7).randbytes(3000).replace(b"\r\n\r\n", b"")
    async with running(client, "fake", resynced=recorder):
        await fake.send(
            b"no colon at all\r\n\r\n",
            b"Event: Junk\r\nData: " + b"x" * 10_000 + b"\r\n\r\n",
            junk + b"\r\n\r\n",
            b"Event: VarSet\r\nValue: \xff\xfe\r\n\r\n",
            b"Response: Success\r\nActionID: nobody-asked\r\n\r\n",
            frame("Event: Hangup", "Uniqueid: 4.2"),
        )
        await until(lambda: "Hangup" in recorder.names())
        assert client.connections("fake") == 1
        assert (await client.action("fake", {"Action": "Ping"})).ok
    assert "Junk" not in recorder.names()
    varset = next(e for e in recorder.events if e.name == "VarSet")
    assert varset["Value"] == "\ufffd\ufffd"


async def test_two_servers_each_in_order_and_tagged(recorder: Recorder) -> None:
    fakes = [FakeAmi(), FakeAmi()]
    for item in fakes:
        await item.start()

    async def slow(event: AmiEvent) -> None:  # a slow async handler must not reorder
        await asyncio.sleep(0.001 if int(event.get("N", "0")) % 2 else 0)
        recorder.on_event(event)

    servers = [fakes[0].server_config("pbx-a"), fakes[1].server_config("pbx-b")]
    client = AmiClient(servers, slow, ping_interval=30)
    try:
        async with running(client, "pbx-a", "pbx-b"):
            for index, item in enumerate(fakes):
                data = b"".join(frame("Event: Newstate", f"N: {n}", f"Box: {index}")
                                for n in range(50))  # fmt: skip
                await item.send(data[:777], data[777:])
            await until(lambda: len([e for e in recorder.events if e.name == "Newstate"]) == 100)
    finally:
        for item in fakes:
            await item.stop()
    for index, name in enumerate(("pbx-a", "pbx-b")):
        mine = [e for e in recorder.events if e.name == "Newstate" and e.server == name]
        assert [int(e["N"]) for e in mine] == list(range(50))
        assert {e["Box"] for e in mine} == {str(index)}


async def test_snapshot_is_handled_before_events_that_follow_the_resync(
    fake: FakeAmi, recorder: Recorder
) -> None:
    async with running(make_client(fake, recorder), "fake", resynced=recorder):
        await until(lambda: len(recorder.snapshots) == 1)
        await fake.send(frame("Event: Hangup", "Uniqueid: 1.1"))
        await until(lambda: "Hangup" in recorder.names())
    assert recorder.order.index("resync") < recorder.order.index("Hangup")


async def test_wrong_secret_keeps_retrying_and_never_reports_connected(
    fake: FakeAmi, recorder: Recorder
) -> None:
    server = AmiServer("fake", "127.0.0.1", fake.port, "hotline", "wrong")
    client = AmiClient([server], recorder.on_event, backoff_initial=0.05, backoff_max=0.2)
    await client.start()
    try:
        await until(lambda: len(fake.actions) >= 3)
        assert not client.connected("fake")
        with pytest.raises(AmiNotConnected, match="refused"):
            await client.wait_connected("fake", 0.1)
    finally:
        await client.stop()


@pytest.mark.parametrize(
    "name", ["answered_queue_call.txt", "asterisk_restart_mid_call.txt", "blind_transfer.txt"]
)
async def test_real_transcript_through_the_client_matches_the_replay(
    fake: FakeAmi, recorder: Recorder, name: str
) -> None:
    data = (FIXTURES / name).read_bytes()
    expected = [(e.name, dict(e.headers)) for e in parse_transcript(data)]
    client = AmiClient([fake.server_config()], recorder.on_event, ping_interval=30)
    async with running(client, "fake"):
        await until(lambda: "FullyBooted" in recorder.names())
        recorder.events.clear()
        rng = random.Random(name)
        cuts = sorted(rng.sample(range(1, len(data)), 25))
        await fake.send(*[data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)],
                        pause=0.001)  # fmt: skip
        await until(lambda: len(recorder.events) >= len(expected))
        assert client.connections("fake") == 1  # a Shutdown event alone does not drop the link
    assert [(e.name, dict(e.headers)) for e in recorder.events] == expected


def test_backoff_is_capped_exponential_with_jitter() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(n, 0.2, 10.0, rng) for n in range(12)]
    assert all(0.1 <= d <= 0.2 for d in delays[:1])
    assert all(5.0 <= d <= 10.0 for d in delays[7:])
    assert len({round(d, 6) for d in delays[7:]}) > 1  # jittered, not in lockstep
    assert backoff_delay(10_000, 0.2, 10.0, rng) <= 10.0


def test_servers_from_settings() -> None:
    settings = Settings().replace(ami_port=25038, pbx_instance="pytest")
    (server,) = servers_from_settings(settings)
    assert (server.name, server.host, server.port) == ("pytest", "127.0.0.1", 25038)
    assert server.secret not in repr(server)


def test_duplicate_server_names_are_refused() -> None:
    server = AmiServer("a", "127.0.0.1", 1, "u", "s")
    with pytest.raises(ValueError, match="unique"):
        AmiClient([server, server], lambda event: None)
