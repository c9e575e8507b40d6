"""The AMI client: several Asterisk servers, supervised links, typed actions, safe Originate.

A small asyncio AMI protocol of our own rather than a wrapped ``panoramisk.Manager``; the
reasons are in docs/ami.md. Everything a caller needs is importable from here.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from cti.ami_errors import (
    AmiActionFailed,
    AmiActionTimeout,
    AmiConnectionLost,
    AmiError,
    AmiInvalidAction,
    AmiLoginFailed,
    AmiNotConnected,
    AmiUnknownServer,
)
from cti.ami_frames import canonical_event_name
from cti.ami_link import LinkOptions, ServerLink
from cti.ami_pump import EventHandler, EventPump, ResyncHandler
from cti.ami_replay import parse_transcript
from cti.ami_types import AmiEvent, AmiResponse, AmiServer, OriginateResult, ResyncSnapshot

__all__ = [
    "AmiActionFailed",
    "AmiActionTimeout",
    "AmiClient",
    "AmiConnectionLost",
    "AmiError",
    "AmiEvent",
    "AmiInvalidAction",
    "AmiLoginFailed",
    "AmiNotConnected",
    "AmiResponse",
    "AmiServer",
    "AmiUnknownServer",
    "OriginateResult",
    "ResyncSnapshot",
    "canonical_event_name",
    "parse_transcript",
    "servers_from_settings",
]

ActionValue = str | Sequence[str]
ORIGINATE_MEMORY = 10_000  # request ids remembered for idempotency (oldest forgotten first)


def servers_from_settings(settings: Any) -> list[AmiServer]:
    """The AMI servers to connect to. Today ``Settings`` names one (``ami_*``); the server is
    named after the PBX instance. An optional ``ami_servers`` setting adds more, written as
    ``name=user:secret@host:port`` separated by commas."""
    servers = [
        AmiServer(
            name=settings.pbx_instance,
            host=settings.ami_host,
            port=int(settings.ami_port),
            username=settings.ami_username,
            secret=settings.ami_secret,
        )
    ]
    extra = str(getattr(settings, "ami_servers", "") or "")
    servers += [_parse_server(item.strip()) for item in extra.split(",") if item.strip()]
    return servers


def _parse_server(text: str) -> AmiServer:
    name, _, rest = text.partition("=")
    credentials, _, address = rest.rpartition("@")
    username, _, secret = credentials.partition(":")
    host, _, port = address.rpartition(":")
    if not (name and username and secret and host and port.isdigit()):
        raise ValueError(f"AMI server {text!r}: write it as name=user:secret@host:port")
    return AmiServer(name, host, int(port), username, secret)


class AmiClient:
    """Connects to every server, keeps reconnecting, and hands events out in wire order.

    ``on_event`` and ``on_resync`` may be plain functions or coroutines; whatever they raise is
    logged and skipped. No action is ever re-sent by the client after a reconnect."""

    def __init__(
        self,
        servers: Sequence[AmiServer],
        on_event: EventHandler,
        on_resync: ResyncHandler | None = None,
        *,
        action_timeout: float = 5.0,
        ping_interval: float = 5.0,
        ping_timeout: float = 3.0,
        backoff_max: float = 10.0,
        backoff_initial: float = 0.2,
        boot_wait: float = 30.0,
        max_frame: int = 1 << 20,
    ) -> None:
        names = [s.name for s in servers]
        if len(set(names)) != len(names):
            raise ValueError(f"AMI server names must be unique: {names}")
        self.action_timeout = action_timeout
        self._options = LinkOptions(
            action_timeout=action_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            boot_wait=boot_wait,
            max_frame=max_frame,
            resync=on_resync is not None,
        )
        self._servers = list(servers)
        self._on_event = on_event
        self._on_resync = on_resync
        self._links: dict[str, ServerLink] = {}
        self._pumps: dict[str, EventPump] = {}
        self._originates: OrderedDict[str, asyncio.Task[OriginateResult]] = OrderedDict()
        self._events_off: set[str] = set()
        self._started = False

    async def start(self) -> None:
        """Start every link in the background; returns at once (see ``wait_connected``)."""
        self._started = True
        for server in self._servers:
            if server.name not in self._links:
                self._start_link(server)

    def _start_link(self, server: AmiServer) -> None:
        events = server.name not in self._events_off
        options = replace(self._options, events=events, resync=events and self._options.resync)
        pump = EventPump(server.name, self._on_event, self._on_resync)
        link = ServerLink(server, pump, options)
        self._pumps[server.name], self._links[server.name] = pump, link
        pump.start()
        link.start()

    async def set_events(self, server: str, on: bool) -> None:
        """Take this server's event stream (and resync at login) or leave it: the link is
        logged in again with ``Events: on|off``. A cluster's AMI leader has it on, the other
        nodes off (cti is told by agent_desktop/calls/cluster_wiring.py)."""
        known = next((s for s in self._servers if s.name == server), None)
        if known is None:
            raise AmiUnknownServer(f"no AMI server named {server!r}", server=server)
        (self._events_off.discard if on else self._events_off.add)(server)
        link, pump = self._links.pop(server, None), self._pumps.pop(server, None)
        if link is not None:
            await link.stop()
        if pump is not None:
            await pump.stop()
        if self._started:
            self._start_link(known)

    async def stop(self) -> None:
        """Log off and close every link; events still queued are dropped."""
        self._started = False
        links, self._links = self._links, {}
        pumps, self._pumps = self._pumps, {}
        await asyncio.gather(*(link.stop() for link in links.values()))
        await asyncio.gather(*(pump.stop() for pump in pumps.values()))

    def connected(self, server: str) -> bool:
        """Logged in right now (actions can be sent)."""
        link = self._links.get(server)
        return link is not None and link.ready

    def connections(self, server: str) -> int:
        """How many times this server has been logged in to (1 after the first login)."""
        return self._link(server).connections

    def backlog(self, server: str) -> int:
        """Events received from this server and not yet handled."""
        return self._pumps[self._link(server).server.name].backlog

    async def wait_connected(self, server: str, timeout: float) -> None:
        """Wait until the server is logged in; raises ``AmiNotConnected`` after ``timeout``."""
        link = self._link(server)
        try:
            await link.wait_ready(timeout)
        except TimeoutError:
            raise AmiNotConnected(
                f"AMI {server} not connected after {timeout:g}s: {link.last_error}"
            ) from None

    async def action(
        self,
        server: str,
        action: Mapping[str, ActionValue],
        *,
        timeout: float | None = None,
    ) -> AmiResponse:
        """Send one action and return its reply (list items in ``.events`` for EventList
        actions). Raises ``AmiNotConnected`` at once when the link is down,
        ``AmiActionTimeout`` after ``timeout`` (default ``action_timeout``),
        ``AmiActionFailed`` on ``Response: Error``. A list value sends the header repeatedly."""
        headers: list[tuple[str, str]] = []
        for key, value in action.items():
            values = [value] if isinstance(value, str) else list(value)
            headers += [(key, str(item)) for item in values]
        if not any(k.lower() == "action" for k, _ in headers):
            raise AmiInvalidAction("an AMI action needs an Action header")
        wait = self.action_timeout if timeout is None else timeout
        return await self._link(server).send(headers, wait)

    async def originate(
        self,
        server: str,
        *,
        channel: str,
        context: str,
        exten: str,
        request_id: str,
        priority: int = 1,
        caller_id: str | None = None,
        variables: Mapping[str, str] | None = None,
        ring_timeout: float = 30.0,
        timeout: float | None = None,
    ) -> OriginateResult:
        """Place a call once per ``request_id``: a repeat (even concurrent) gets the first
        outcome, result or error, and dials nothing. Only ``AmiNotConnected`` (nothing was sent)
        is forgotten, so that request may be tried again. Sent with ``Async: true``; the
        ``OriginateResponse`` event (``ActionID: originate:<request_id>``) tells how it ended."""
        task = self._originates.get(request_id)
        if task is None:
            headers = [
                ("Action", "Originate"),
                ("ActionID", f"originate:{request_id}"),
                ("Channel", channel),
                ("Context", context),
                ("Exten", exten),
                ("Priority", str(priority)),
                ("Timeout", str(int(ring_timeout * 1000))),
                ("Async", "true"),
            ]
            if caller_id is not None:
                headers.append(("CallerID", caller_id))
            headers += [("Variable", f"{k}={v}") for k, v in (variables or {}).items()]
            wait = self.action_timeout if timeout is None else timeout
            task = asyncio.create_task(self._originate_once(server, request_id, headers, wait))
            self._remember(request_id, task)
        return await asyncio.shield(task)

    async def _originate_once(
        self, server: str, request_id: str, headers: list[tuple[str, str]], wait: float
    ) -> OriginateResult:
        try:
            response = await self._link(server).send(headers, wait)
        except (AmiNotConnected, AmiInvalidAction, AmiUnknownServer):
            self._originates.pop(request_id, None)  # nothing went out: a retry is safe
            raise
        return OriginateResult(request_id, server, response.action_id, response)

    def _remember(self, request_id: str, task: asyncio.Task[OriginateResult]) -> None:
        self._originates[request_id] = task
        while len(self._originates) > ORIGINATE_MEMORY:
            oldest, first = next(iter(self._originates.items()))
            if not first.done():
                break
            del self._originates[oldest]

    def _link(self, server: str) -> ServerLink:
        link = self._links.get(server)
        if link is not None:
            return link
        if any(s.name == server for s in self._servers):
            raise AmiNotConnected(f"AMI client is not started ({server})", server=server)
        raise AmiUnknownServer(f"no AMI server named {server!r}", server=server)
