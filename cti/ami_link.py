"""One supervised AMI connection to one Asterisk: connect, log in, read, ping, resync, repeat.

Reading and action replies never wait for event handlers: the reader resolves replies itself
and only *queues* events, so a slow handler can never starve a Ping and trip the watchdog.
Events of one server are handled by a single consumer task in wire order (see ``EventPump``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cti.ami_errors import (
    AmiActionFailed,
    AmiActionTimeout,
    AmiConnectionLost,
    AmiError,
    AmiInvalidAction,
    AmiLoginFailed,
    AmiNotConnected,
)
from cti.ami_frames import AmiFrame, FrameDecoder
from cti.ami_pump import EventPump, ResyncSlot
from cti.ami_types import AmiEvent, AmiResponse, AmiServer, ResyncSnapshot

log = logging.getLogger(__name__)

ActionHeaders = Sequence[tuple[str, str]]
QUEUE_STATUS_ITEMS = frozenset({"QueueParams", "QueueMember", "QueueEntry"})
_ids = itertools.count(1)


@dataclass(frozen=True)
class LinkOptions:
    action_timeout: float = 5.0
    ping_interval: float = 5.0
    ping_timeout: float = 3.0
    backoff_initial: float = 0.2
    backoff_max: float = 10.0
    connect_timeout: float = 5.0
    boot_wait: float = 30.0
    stable_after: float = 5.0  # a session this long resets the backoff
    max_frame: int = 1 << 20
    resync: bool = True
    # Off for a node of a cluster that does not lead this server: it sends actions (dial,
    # pause, spy) and leaves the event stream to the leader (docs/deploy.md).
    events: bool = True


def backoff_delay(attempt: int, initial: float, cap: float, rng: random.Random) -> float:
    """Capped exponential backoff with jitter (50-100 % of the capped step)."""
    step: float = min(cap, initial * 2.0 ** min(attempt, 30))
    return step * rng.uniform(0.5, 1.0)


def encode_action(headers: ActionHeaders) -> bytes:
    """The wire form of an action; refuses anything that could inject a header or a frame."""
    lines = []
    for key, value in headers:
        if not key or any(c in key for c in "\r\n: "):
            raise AmiInvalidAction(f"bad AMI header name {key!r}")
        if "\r" in value or "\n" in value:
            raise AmiInvalidAction(f"AMI header {key} contains a line break", header=key)
        lines.append(f"{key}: {value}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("utf-8")


@dataclass
class _Pending:
    server: str
    action: str
    action_id: str
    future: asyncio.Future[AmiResponse]
    response: AmiFrame | None = None
    is_list: bool = False
    events: list[AmiEvent] = field(default_factory=list)


class ServerLink:
    def __init__(self, server: AmiServer, pump: EventPump, options: LinkOptions) -> None:
        self.server = server
        self.pump = pump
        self.options = options
        self.connections = 0  # successful logins so far
        self.last_error: str | None = None
        self.lost_at_ns: int | None = None  # when the last logged-in session ended
        self._ready = False
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[str, _Pending] = {}
        self._booted = asyncio.Event()
        self._ready_event = asyncio.Event()
        self._rng = random.Random()
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self._ready

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name=f"ami-{self.server.name}")

    async def wait_ready(self, within: float) -> None:
        async with asyncio.timeout(within):
            await self._ready_event.wait()

    async def stop(self) -> None:
        if self._ready:
            with contextlib.suppress(AmiError):
                await self.send([("Action", "Logoff")], 1.0)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- actions -------------------------------------------------------------------------

    async def send(
        self, headers: ActionHeaders, within: float, *, require_ready: bool = True
    ) -> AmiResponse:
        """Send one action and wait for its complete reply. Never re-sent, never hangs."""
        action = next((v for k, v in headers if k.lower() == "action"), "")
        action_id = next((v for k, v in headers if k.lower() == "actionid"), None)
        if action_id is None:
            action_id = f"hotline-{next(_ids)}"
            headers = [*headers, ("ActionID", action_id)]
        data = encode_action(headers)
        writer = self._writer
        if writer is None or writer.is_closing() or (require_ready and not self._ready):
            raise AmiNotConnected(f"AMI {self.server.name} is not connected", action=action)
        if action_id in self._pending:
            raise AmiInvalidAction(f"ActionID {action_id} is already in flight")
        future: asyncio.Future[AmiResponse] = asyncio.get_running_loop().create_future()
        pending = _Pending(self.server.name, action, action_id, future)
        self._pending[action_id] = pending
        writer.write(data)
        try:
            async with asyncio.timeout(within):
                await writer.drain()
                return await future
        except TimeoutError:
            # The entry stays until its reply (or the link) goes, so late list items are
            # absorbed rather than leaking out as events.
            raise AmiActionTimeout(
                f"AMI {action} on {self.server.name}: no reply in {within:g}s",
                action=action,
                action_id=action_id,
            ) from None
        except (ConnectionError, OSError):
            self._pending.pop(action_id, None)
            raise AmiConnectionLost(
                f"AMI {self.server.name} dropped during {action}", action=action
            ) from None

    # -- frames from the reader ----------------------------------------------------------

    def _on_frame(self, frame: AmiFrame) -> None:
        if frame.kind == "event":
            self._on_event_frame(frame)
        elif frame.kind == "response":
            self._on_response(frame)
        elif frame.kind == "banner":
            log.debug("AMI %s: %s", self.server.name, frame.headers.get("Banner"))
        else:
            log.debug("AMI %s: frame without Event/Response ignored", self.server.name)

    def _on_response(self, frame: AmiFrame) -> None:
        pending = self._pending.get(frame.action_id or "")
        if pending is None:
            log.debug("AMI %s: reply to no pending action: %s", self.server.name, frame.action_id)
            return
        pending.response = frame
        eventlist = frame.headers.get("EventList", "").lower()
        if frame.headers.get("Response") in ("Success", "Follows") and (
            eventlist == "start" or frame.headers.get("Message", "").endswith("will follow")
        ):
            pending.is_list = True
            return
        self._complete(pending)

    def _on_event_frame(self, frame: AmiFrame) -> None:
        event = AmiEvent.from_frame(self.server.name, frame)
        pending = self._pending.get(frame.action_id or "")
        if pending is not None and pending.is_list:
            if frame.headers.get("EventList", "").lower() == "complete" or (
                event.name.endswith("Complete")
            ):
                self._complete(pending)
            else:
                pending.events.append(event)
            return
        if event.name == "FullyBooted":
            self._booted.set()
        self.pump.put(event)

    def _complete(self, pending: _Pending) -> None:
        self._pending.pop(pending.action_id, None)
        if pending.future.done():  # its caller timed out
            return
        frame = pending.response
        assert frame is not None
        response = AmiResponse(
            pending.server,
            pending.action,
            pending.action_id,
            frame.headers,
            frame.received_ns,
            tuple(pending.events),
        )
        if response.ok:
            pending.future.set_result(response)
        else:
            pending.future.set_exception(
                AmiActionFailed(
                    f"AMI {pending.action} on {pending.server}: {response.message or 'Error'}",
                    action=pending.action,
                    response=response.response,
                )
            )

    def _fail_pending(self) -> None:
        pending, self._pending = self._pending, {}
        for item in pending.values():
            if not item.future.done():
                item.future.set_exception(
                    AmiConnectionLost(
                        f"AMI {self.server.name} dropped before {item.action} completed",
                        action=item.action,
                    )
                )

    # -- the connection ------------------------------------------------------------------

    async def _supervise(self) -> None:
        attempt = 0
        while True:
            began = time.monotonic()
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except AmiLoginFailed as exc:
                self.last_error = exc.message
                log.error("AMI %s: %s", self.server.name, exc.message)
            except (OSError, TimeoutError, AmiError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("AMI %s: connection failed: %s", self.server.name, self.last_error)
            except Exception:
                self.last_error = "internal error"
                log.exception("AMI %s: session crashed", self.server.name)
            if time.monotonic() - began >= self.options.stable_after:
                attempt = 0
            delay = backoff_delay(
                attempt, self.options.backoff_initial, self.options.backoff_max, self._rng
            )
            attempt += 1
            log.info("AMI %s: reconnecting in %.2fs", self.server.name, delay)
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        opts = self.options
        host, port = self.server.host, self.server.port
        async with asyncio.timeout(opts.connect_timeout):
            reader, writer = await self._connect(host, port)
        self._writer = writer
        self._booted.clear()
        reader_task = asyncio.create_task(
            self._until_closed(reader), name=f"ami-read-{self.server.name}"
        )
        helpers: list[asyncio.Task[None]] = []
        try:
            await self._login()
            self._ready = True
            self._ready_event.set()
            self.connections += 1
            self.last_error = None
            log.info("AMI %s: logged in (connection %d)", self.server.name, self.connections)
            helpers.append(asyncio.create_task(self._watchdog()))
            if opts.resync:
                helpers.append(asyncio.create_task(self._resync(self.connections)))
            await asyncio.shield(reader_task)
        finally:
            if self._ready:  # a logged-in session ended (not by EOF): the outage starts now
                self.lost_at_ns = time.monotonic_ns()
            self._ready = False
            self._ready_event.clear()
            for task in (*helpers, reader_task):
                task.cancel()
            for task in (*helpers, reader_task):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self._fail_pending()
            self._writer = None
            writer.transport.abort()

    async def _login(self) -> None:
        server = self.server
        headers = [
            ("Action", "Login"),
            ("Username", server.username),
            ("Secret", server.secret),
            ("Events", "on" if self.options.events else "off"),
        ]
        try:
            await self.send(headers, self.options.action_timeout, require_ready=False)
        except AmiActionFailed as exc:
            raise AmiLoginFailed(f"AMI login to {server.name} refused: {exc.message}") from None

    async def _connect(
        self, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A stream pair whose incoming bytes are decoded as they arrive (``_FrameReader``):
        the reader half only ever sees the end of the connection."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(loop=loop)
        protocol = _FrameReader(reader, self._on_data, self.options.max_frame)
        transport, _ = await loop.create_connection(lambda: protocol, host, port)
        return reader, asyncio.StreamWriter(transport, protocol, reader, loop)

    def _on_data(self, frames: list[AmiFrame]) -> None:
        for frame in frames:
            try:
                self._on_frame(frame)
            except Exception:
                log.exception("AMI %s: frame handling failed", self.server.name)

    async def _until_closed(self, reader: asyncio.StreamReader) -> None:
        try:
            await reader.read()  # nothing is fed to it: this returns at EOF
        except (ConnectionError, OSError) as exc:
            log.info("AMI %s: read failed: %s", self.server.name, exc)
        finally:
            log.info("AMI %s: connection closed", self.server.name)
            if self._ready:  # a logged-in session ended: the outage starts now
                self.lost_at_ns = time.monotonic_ns()
            self._ready = False
            self._fail_pending()

    async def _watchdog(self) -> None:
        """Our own Ping: a missed Pong means a dead or half-open link, so drop it."""
        opts = self.options
        while True:
            await asyncio.sleep(opts.ping_interval)
            try:
                await self.send([("Action", "Ping")], opts.ping_timeout)
            except AmiError as exc:
                log.warning("AMI %s: ping failed (%s); reconnecting", self.server.name, exc)
                self._abort()
                return

    def _abort(self) -> None:
        writer = self._writer
        if writer is not None:
            writer.transport.abort()

    async def _resync(self, connection: int) -> None:
        opts = self.options
        try:
            async with asyncio.timeout(opts.boot_wait):
                await self._booted.wait()
        except TimeoutError:
            log.warning("AMI %s: no FullyBooted in %gs; resyncing anyway", self.server.name,
                        opts.boot_wait)  # fmt: skip
        slot = ResyncSlot()
        self.pump.put(slot)
        snapshot: ResyncSnapshot | None = None
        try:
            channels = await self.send([("Action", "CoreShowChannels")], opts.action_timeout)
            queues = await self.send([("Action", "QueueStatus")], opts.action_timeout)
            taken = time.monotonic_ns()
            snapshot = ResyncSnapshot(
                self.server.name,
                connection,
                tuple(e for e in channels.events if e.name == "CoreShowChannel"),
                tuple(e for e in queues.events if e.name in QUEUE_STATUS_ITEMS),
                taken,
                None if self.lost_at_ns is None else taken - self.lost_at_ns,
            )
        except AmiError as exc:
            log.warning("AMI %s: resync failed (%s); reconnecting", self.server.name, exc)
            self._abort()
        finally:
            slot.fill(snapshot)


class _FrameReader(asyncio.StreamReaderProtocol):
    """Decodes bytes in the transport's own callback and hands the frames on at once.

    With a StreamReader the bytes would wait for the reader task's next turn of the loop,
    and every turn gives the GIL up to whatever thread is busy: an event would reach its
    handler a turn later, and a screen pop with it (docs/ami.md). Frames are still handled
    in wire order, since one connection's callbacks never overlap. The StreamReader is only
    fed the end of the stream (or its error), which is what ends the session."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        on_frames: Callable[[list[AmiFrame]], None],
        max_frame: int,
    ) -> None:
        super().__init__(reader)
        self._decoder = FrameDecoder(max_frame)
        self._on_frames = on_frames

    def data_received(self, data: bytes) -> None:
        self._on_frames(self._decoder.feed(data, time.monotonic_ns()))
