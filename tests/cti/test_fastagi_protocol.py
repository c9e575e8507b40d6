"""The FastAGI server over real loopback sockets, against clients that misbehave.

Every test runs a ticker task beside the server: a bad client may cost its own connection,
but the loop must keep running (the ticker keeps ticking) and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from cti.agi_client import agi_environment, header_bytes, simulate_channel
from cti.agi_protocol import (
    AgiCommandFailed,
    AgiConnectionLost,
    AgiEnvironment,
    AgiError,
    AgiHangup,
    AgiTimeout,
)
from cti.agi_session import AgiSession
from cti.fastagi import FastAgiServer

HOST = "127.0.0.1"


class Ticker:
    """Ticks every 10 ms; `advanced(n)` waits until it has ticked n more times."""

    def __init__(self) -> None:
        self.ticks = 0
        self._ticked = asyncio.Condition()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.01)
            async with self._ticked:
                self.ticks += 1
                self._ticked.notify_all()

    async def advanced(self, count: int = 5) -> None:
        """Returns only if the loop kept running: a frozen loop never gets here."""
        target = self.ticks + count
        async with asyncio.timeout(30), self._ticked:
            await self._ticked.wait_for(lambda: self.ticks >= target)

    def stop(self) -> None:
        self._task.cancel()


@dataclass
class Recorder:
    """What the handlers saw: outcomes by uniqueid, and the exceptions that ended them."""

    outcomes: dict[str, str] = field(default_factory=dict)
    errors: list[BaseException] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def wrap(self, body: Callable[[AgiSession], Awaitable[str]]) -> Callable[..., Awaitable[None]]:
        async def handler(session: AgiSession) -> None:
            try:
                self.outcomes[session.env.uniqueid] = await body(session)
            except BaseException as exc:
                self.errors.append(exc)
                raise
            finally:
                self.ended.set()

        return handler


async def _greet(session: AgiSession) -> str:
    await session.answer()
    await session.set_variable("GREETING", 'say "hi" \\ 你好\nnext')
    return (await session.get_variable("GREETING")) or ""


async def _loop_commands(session: AgiSession) -> str:
    for _ in range(100):
        await session.verbose("still here")
    return "finished"


async def _bad_usage_then_read(session: AgiSession) -> str:
    try:
        await session.command("GET DATA")
    except AgiCommandFailed as exc:
        first = exc.message
    else:
        first = "no error"
    value = await session.get_variable("AFTER")
    return f"{first}|{value}"


async def _crash(session: AgiSession) -> str:
    raise RuntimeError("handler bug")


@pytest.fixture
async def ticker() -> AsyncIterator[Ticker]:
    running = Ticker()
    yield running
    running.stop()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def server(recorder: Recorder) -> AsyncIterator[FastAgiServer]:
    handlers = {
        "greet": recorder.wrap(_greet),
        "loop": recorder.wrap(_loop_commands),
        "usage": recorder.wrap(_bad_usage_then_read),
        "crash": recorder.wrap(_crash),
    }
    agi = FastAgiServer(
        HOST, 0, handlers, header_timeout=0.5, command_timeout=0.5, max_connections=3
    )
    await agi.start()
    yield agi
    await agi.stop(grace=0.5)


async def _still_serves(agi: FastAgiServer, uniqueid: str = "ok.1") -> None:
    env = agi_environment("greet", uniqueid=uniqueid)
    channel = await simulate_channel(HOST, agi.bound_port, env)
    assert channel.closed_by_server
    assert channel.variables["GREETING"] == 'say "hi" \\ 你好 next'


async def _until(condition: Callable[[], bool]) -> None:
    """Poll a condition the server exposes no event for; the bound only stops a hang."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def _read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """What the server sent until it closed; a reset (it closed with our bytes unread) too."""
    async with asyncio.timeout(10):
        try:
            return await reader.read()
        except ConnectionResetError:
            return b""


async def test_a_well_behaved_conversation(server: FastAgiServer, recorder: Recorder) -> None:
    await _still_serves(server, "good.1")
    assert recorder.outcomes["good.1"] == 'say "hi" \\ 你好 next'
    assert server.active_connections == 0


async def test_partial_headers_then_close(
    server: FastAgiServer, recorder: Recorder, ticker: Ticker
) -> None:
    _reader, writer = await asyncio.open_connection(HOST, server.bound_port)
    writer.write(b"agi_network: yes\nagi_network_scr")
    await writer.drain()
    writer.close()
    await ticker.advanced()
    await _still_serves(server)
    assert not recorder.errors


async def test_slow_client_with_half_headers_times_out_without_blocking(
    server: FastAgiServer, recorder: Recorder, ticker: Ticker
) -> None:
    reader, writer = await asyncio.open_connection(HOST, server.bound_port)
    writer.write(b"agi_network: yes\nagi_network_script: greet\n")
    await writer.drain()
    await ticker.advanced()  # the loop runs while the header block hangs half-sent
    await _still_serves(server, "beside.1")
    assert await _read_until_closed(reader) == b""  # the header timeout closed it
    writer.close()
    assert not recorder.errors


@pytest.mark.parametrize(
    "payload",
    [
        b"agi_network: yes\nagi_x: " + b"A" * 100_000,  # one endless line
        b"".join(b"agi_k%d: v\n" % i for i in range(500)) + b"\n",  # too many lines
        bytes(range(256)) * 40,  # binary garbage
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # not AGI at all
        b"\n",  # an empty header block
        b"\xff\xfe\x00garbage\n\n",
    ],
    ids=["long-line", "many-lines", "binary", "http", "empty", "bad-key"],
)
async def test_huge_or_garbage_headers_are_refused(
    server: FastAgiServer, recorder: Recorder, ticker: Ticker, payload: bytes
) -> None:
    reader, writer = await asyncio.open_connection(HOST, server.bound_port)
    with contextlib.suppress(ConnectionError):
        writer.write(payload)
        await writer.drain()
    await ticker.advanced()
    assert await _read_until_closed(reader) == b""
    writer.close()
    await _still_serves(server)
    assert not recorder.errors


async def test_unknown_script_is_closed_without_commands(
    server: FastAgiServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cti.fastagi")
    env = agi_environment("no-such-thing", uniqueid="u.77")
    channel = await simulate_channel(HOST, server.bound_port, env)
    assert channel.commands == []
    assert "unknown script 'no-such-thing' uniqueid=u.77" in caplog.text


async def test_every_connection_is_logged_with_its_uniqueid(
    server: FastAgiServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cti.fastagi")
    await _still_serves(server, "1795568024.42")
    assert "greet uniqueid=1795568024.42" in caplog.text


async def test_early_close_mid_command(
    server: FastAgiServer, recorder: Recorder, ticker: Ticker
) -> None:
    reader, writer = await asyncio.open_connection(HOST, server.bound_port)
    writer.write(header_bytes(agi_environment("loop", uniqueid="early.1")))
    await writer.drain()
    assert (await reader.readline()).startswith(b"VERBOSE")
    writer.write(b"200 res")  # half a reply, then gone
    await writer.drain()
    writer.close()
    async with asyncio.timeout(10):
        await recorder.ended.wait()
    assert isinstance(recorder.errors[0], AgiConnectionLost)
    await ticker.advanced()
    await _still_serves(server)


async def test_multi_line_520_is_one_reply_and_keeps_the_stream_in_step(
    server: FastAgiServer, recorder: Recorder
) -> None:
    reader, writer = await asyncio.open_connection(HOST, server.bound_port)
    writer.write(header_bytes(agi_environment("usage", uniqueid="u520.1")))
    await writer.drain()
    assert await reader.readline() == b"GET DATA\n"
    writer.write(
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b" Usage: GET DATA <file to be streamed> [timeout] [max digits]\n"
        b"200 result=1 (this line is usage text, not a reply)\n"
        b"\n"
        b"520 End of proper usage.\n"
    )
    await writer.drain()
    assert await reader.readline() == b"GET VARIABLE AFTER\n"
    writer.write(b"200 result=1 (in step)\n")
    await writer.drain()
    assert await _read_until_closed(reader) == b""
    writer.close()
    first, value = recorder.outcomes["u520.1"].split("|")
    assert "520" in first and "Usage: GET DATA" in first
    assert value == "in step"


@pytest.mark.parametrize(
    "hangup",
    [b"HANGUP\n", b"200 result=1\nHANGUP\n", b"511 Command Not Permitted on a dead channel\n"],
    ids=["hangup-line", "after-a-reply", "511"],
)
async def test_hangup_mid_script_ends_the_handler_cleanly(
    server: FastAgiServer, recorder: Recorder, hangup: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cti.fastagi")
    reader, writer = await asyncio.open_connection(HOST, server.bound_port)
    writer.write(header_bytes(agi_environment("loop", uniqueid="hup.1")))
    await writer.drain()
    assert (await reader.readline()).startswith(b"VERBOSE")
    writer.write(b"200 result=1\n")
    await writer.drain()
    assert (await reader.readline()).startswith(b"VERBOSE")
    writer.write(hangup)
    await writer.drain()
    rest = await _read_until_closed(reader)
    writer.close()
    assert rest.count(b"VERBOSE") <= 1  # at most the command the HANGUP line overtook
    assert isinstance(recorder.errors[0], AgiHangup)
    assert "hup.1" not in recorder.outcomes
    assert "loop uniqueid=hup.1 ended" in caplog.text
    assert "crashed" not in caplog.text


async def test_slow_reply_times_the_command_out(
    server: FastAgiServer, recorder: Recorder, ticker: Ticker
) -> None:
    reader, writer = await asyncio.open_connection(HOST, server.bound_port)
    writer.write(header_bytes(agi_environment("loop", uniqueid="slow.1")))
    await writer.drain()
    assert (await reader.readline()).startswith(b"VERBOSE")
    await ticker.advanced()  # no reply: the loop goes on meanwhile
    assert await _read_until_closed(reader) == b""
    writer.close()
    assert isinstance(recorder.errors[0], AgiTimeout)
    await _still_serves(server)


async def test_a_crashing_handler_never_kills_the_server(
    server: FastAgiServer, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    channel = await simulate_channel(HOST, server.bound_port, agi_environment("crash"))
    assert channel.closed_by_server
    assert isinstance(recorder.errors[0], RuntimeError)
    assert "handler crash crashed" in caplog.text
    await _still_serves(server)


async def test_connections_are_bounded_and_the_extra_one_is_closed_at_once(
    recorder: Recorder, ticker: Ticker
) -> None:
    server = FastAgiServer(HOST, 0, {"greet": recorder.wrap(_greet)}, max_connections=3)
    await server.start()
    held = [await asyncio.open_connection(HOST, server.bound_port) for _ in range(3)]
    await _until(lambda: server.active_connections == 3)
    await ticker.advanced()
    reader, writer = await asyncio.open_connection(HOST, server.bound_port)
    writer.write(header_bytes(agi_environment("greet")))
    assert await _read_until_closed(reader) == b""  # refused: Asterisk would go on without us
    writer.close()
    for _, held_writer in held:
        held_writer.close()
    await _until(lambda: server.active_connections == 0)
    await _still_serves(server)
    await server.stop()


async def test_stop_cancels_stuck_conversations_and_closes_the_port(recorder: Recorder) -> None:
    stopped = asyncio.Event()

    async def on_stop() -> None:
        stopped.set()

    agi = FastAgiServer(HOST, 0, {"loop": recorder.wrap(_loop_commands)}, on_stop=on_stop)
    await agi.start()
    port = agi.bound_port
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(header_bytes(agi_environment("loop")))
    assert (await reader.readline()).startswith(b"VERBOSE")
    await agi.stop(grace=0.2)
    assert stopped.is_set()
    assert agi.active_connections == 0
    assert isinstance(recorder.errors[0], asyncio.CancelledError)
    assert await _read_until_closed(reader) == b""
    writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection(HOST, port)


async def test_session_helpers_send_the_documented_commands(recorder: Recorder) -> None:
    async def everything(session: AgiSession) -> str:
        digit = await session.stream_file("hotline/welcome", "12")
        keyed = await session.get_data("hotline/identify", 3000, 6)
        await session.verbose('a "quoted" note')
        await session.hangup()
        return f"{digit}|{keyed}"

    async with FastAgiServer(HOST, 0, {"all": recorder.wrap(everything)}) as agi:
        env = agi_environment("all", uniqueid="h.1")
        channel = await simulate_channel(HOST, agi.bound_port, env, keyed=["123456"])
    assert channel.commands == [
        'STREAM FILE hotline/welcome "12"',
        "GET DATA hotline/identify 3000 6",
        'VERBOSE "a \\"quoted\\" note" 1',
        "HANGUP",
    ]
    assert recorder.outcomes["h.1"] == "None|123456"


async def test_helpers_refuse_arguments_that_would_break_the_line() -> None:
    env = AgiEnvironment(agi_environment("x"))
    session = AgiSession(asyncio.StreamReader(), None, env)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await session.set_variable("BAD NAME", "x")
    with pytest.raises(ValueError):
        await session.stream_file("two words")
    with pytest.raises(ValueError):
        await session.get_data("hotline/x", 0, 6)
    assert isinstance(AgiTimeout("x"), AgiError)


async def test_a_taken_port_releases_what_start_opened() -> None:
    """start() on a busy port must undo on_start, or its resources leak."""
    from cti.fastagi import FastAgiServer

    events: list[str] = []

    async def opened() -> None:
        events.append("start")

    async def closed() -> None:
        events.append("stop")

    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = blocker.sockets[0].getsockname()[1]
    server = FastAgiServer("127.0.0.1", port, {}, on_start=opened, on_stop=closed)
    try:
        with pytest.raises(OSError):
            await server.start()
    finally:
        blocker.close()
        await blocker.wait_closed()
    assert events == ["start", "stop"]
