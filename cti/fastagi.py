"""An asyncio FastAGI server: Asterisk connects, we read the agi_* block, run one handler.

Why our own (DESIGN.md §5): panoramisk's FastAGI freezes the loop on half a header block and
desyncs on a multi-line 520; pyst2 is not Python 3.11 clean. Here every read has a timeout
and a size bound, a handler's crash or a hang-up ends only its own connection, and the
number of connections is bounded. Past the bound we close at once: Asterisk then reports
AGISTATUS=FAILURE and the dialplan routes the call without us, which beats a queue here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

from cti.agi_protocol import AgiEnded, AgiEnvironment, AgiError, AgiTimeout, HeaderCollector
from cti.agi_session import COMMAND_TIMEOUT, AgiSession, read_line

log = logging.getLogger(__name__)

AgiHandler = Callable[[AgiSession], Awaitable[None]]
HEADER_TIMEOUT = 5.0
MAX_CONNECTIONS = 200
STREAM_LIMIT = 8192


async def read_environment(reader: asyncio.StreamReader, seconds: float) -> AgiEnvironment:
    """The agi_* block, within `seconds` in total and the protocol's size limits."""
    collector = HeaderCollector()
    try:
        async with asyncio.timeout(seconds):
            while not collector.add(await read_line(reader)):
                pass
    except TimeoutError:
        raise AgiTimeout(
            f"AGI header block not complete within {seconds}s ({collector.lines} line(s) received)"
        ) from None
    return collector.environment()


class FastAgiServer:
    """Routes each connection by the URL path of agi_network_script to a named handler."""

    def __init__(
        self,
        host: str,
        port: int,
        handlers: Mapping[str, AgiHandler],
        *,
        max_connections: int = MAX_CONNECTIONS,
        header_timeout: float = HEADER_TIMEOUT,
        command_timeout: float = COMMAND_TIMEOUT,
        on_start: Callable[[], Awaitable[None]] | None = None,
        on_stop: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.handlers = dict(handlers)
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.command_timeout = command_timeout
        self._on_start = on_start
        self._on_stop = on_stop
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def active_connections(self) -> int:
        return len(self._tasks)

    @property
    def bound_port(self) -> int:
        """The port actually listened on (differs from `port` when that was 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("FastAGI server is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        if self._server is not None:
            return
        if self._on_start is not None:
            await self._on_start()
        try:
            self._server = await asyncio.start_server(
                self._on_connection, self.host, self.port, limit=STREAM_LIMIT
            )
        except OSError:
            # Port taken: undo on_start (it opened the caller-lookup connection), or that
            # connection would leak, since stop() does nothing for a server never started.
            if self._on_stop is not None:
                await self._on_stop()
            raise
        log.info("FastAGI listening on %s:%s", self.host, self.bound_port)

    async def stop(self, grace: float = 2.0) -> None:
        """Stop accepting, give running handlers `grace` seconds, then cancel the rest."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        await server.wait_closed()
        pending = set(self._tasks)
        if pending:
            _done, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=grace)
        if self._on_stop is not None:
            await self._on_stop()
        log.info("FastAGI stopped")

    async def __aenter__(self) -> FastAgiServer:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        peer = writer.get_extra_info("peername")
        if len(self._tasks) >= self.max_connections or task is None:
            log.warning("FastAGI: %s refused, %d connections busy", peer, len(self._tasks))
            await _close(writer)
            return
        self._tasks.add(task)
        try:
            await self._converse(reader, writer, peer)
        except asyncio.CancelledError:
            # Not re-raised: this task is the connection's top level, and asyncio's stream
            # callback would log a cancelled task as an error.
            log.warning("FastAGI: connection from %s cancelled at shutdown", peer)
        finally:
            self._tasks.discard(task)
            await _close(writer)

    async def _converse(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: object
    ) -> None:
        try:
            env = await read_environment(reader, self.header_timeout)
        except AgiError as exc:
            log.warning("FastAGI: %s sent no usable header block: %s", peer, exc.message)
            return
        script, uniqueid = env.script, env.uniqueid
        handler = self.handlers.get(script)
        if handler is None:
            log.warning("FastAGI: unknown script %r uniqueid=%s from %s", script, uniqueid, peer)
            return
        log.info(
            "FastAGI: %s uniqueid=%s channel=%s callerid=%s",
            script,
            uniqueid,
            env.channel,
            env.callerid,
        )
        session = AgiSession(reader, writer, env, self.command_timeout)
        try:
            await handler(session)
        except AgiEnded as exc:
            log.info("FastAGI: %s uniqueid=%s ended: %s", script, uniqueid, exc.message)
        except AgiError as exc:
            log.warning("FastAGI: %s uniqueid=%s failed: %s", script, uniqueid, exc.message)
        except Exception:
            log.exception("FastAGI: handler %s crashed, uniqueid=%s", script, uniqueid)
        else:
            log.info("FastAGI: %s uniqueid=%s done", script, uniqueid)


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close without waiting on a peer that stopped reading."""
    writer.close()
    with contextlib.suppress(Exception):
        async with asyncio.timeout(1.0):
            await writer.wait_closed()
