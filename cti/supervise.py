"""Supervisor listen / whisper / barge: ring the supervisor's own phone into ChanSpy on the
agent's leg of a live call, and keep the session (cti/spy_sessions.py) until it hangs up.

The supervisor's leg is an AMI Originate with `Application: ChanSpy`; its `ChannelId` is
chosen here (`spy-<request id>`), so the leg's Hangup, its OriginateResponse and, after an
AMI reconnect, the tracker's CallEnded for that id all name the session without any state
kept in memory. ChanSpy options: q (no beep, no channel name read out), b (only a bridged
channel), E (leave when the spied channel hangs up), S (leave when nothing is left to spy
on), plus w (whisper: the agent hears the supervisor, the caller does not) or B (barge:
both hear). A repeat of the same request (the browser's request id) spies once.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from crm_core.db import Database
from crm_core.errors import HotlineError, NotFound, ValidationError
from cti import spy_sessions
from cti.call_events import CallEnded
from cti.tracker import AmiEventLike, CallState, CallTracker

log = logging.getLogger(__name__)
REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
ACTION_PREFIX = "spy:"
CHANNEL_PREFIX = "spy-"
RING_TIMEOUT_MS = 30_000
SPY_ROLES = frozenset({"supervisor", "admin"})


class SpyMode(enum.StrEnum):
    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"


OPTIONS = {SpyMode.LISTEN: "qbES", SpyMode.WHISPER: "qbESw", SpyMode.BARGE: "qbESB"}


class SpyNotAllowed(HotlineError):
    status = 403
    error_id = "spy_not_allowed"


class SpyOutOfScope(HotlineError):
    status = 403
    error_id = "spy_out_of_scope"


class SupervisorHasNoPhone(HotlineError):
    status = 409
    error_id = "supervisor_no_phone"


class CallNotLive(NotFound):
    error_id = "call_not_live"


class CallNotAnswered(HotlineError):
    status = 409
    error_id = "call_not_answered"


class SpyOnOwnPhone(HotlineError):
    status = 409
    error_id = "spy_own_phone"


class SpyFailed(HotlineError):
    status = 503
    error_id = "spy_failed"


class AmiActions(Protocol):
    async def action(
        self, server: str, action: Mapping[str, Any], *, timeout: float | None = None
    ) -> Any: ...


@dataclass(frozen=True)
class Supervisor:
    id: int
    role: str
    region: str | None
    phone_interface: str | None


def parse_mode(value: object) -> SpyMode:
    try:
        return SpyMode(str(value))
    except ValueError:
        raise ValidationError("mode must be listen, whisper or barge", field="mode") from None


def chanspy_data(target: str, mode: SpyMode) -> str:
    return f"{target},{OPTIONS[mode]}"


def _session_of(uniqueid: str) -> str | None:
    """The action id of the spy session whose supervisor leg has this unique id."""
    if uniqueid.startswith(CHANNEL_PREFIX):
        return ACTION_PREFIX + uniqueid.removeprefix(CHANNEL_PREFIX)
    return None


def _timestamp(headers: Mapping[str, str]) -> float | None:
    try:
        return float(headers["Timestamp"])
    except (KeyError, ValueError):
        return None


class SpyService:
    """Starts spy sessions (checks first, then one Originate) and ends them from AMI."""

    def __init__(self, db: Database, tracker: CallTracker, ami: AmiActions, server: str) -> None:
        self.db = db
        self.tracker = tracker
        self.ami = ami
        self.server = server
        self._tail: asyncio.Task[None] | None = None

    async def start(
        self,
        supervisor: Supervisor,
        linkedid: str,
        mode_value: object,
        request_id: str,
        ip: str | None = None,
    ) -> dict[str, Any]:
        mode = parse_mode(mode_value)
        if supervisor.role not in SPY_ROLES:
            raise SpyNotAllowed("only supervisors and admins may listen to calls")
        if not REQUEST_ID.match(request_id):
            raise ValidationError("request_id: 8-64 letters, digits, - or _ (one per click)")
        phone = supervisor.phone_interface
        if not phone:
            raise SupervisorHasNoPhone(
                "you have no phone extension to listen on; ask an admin to give you one"
            )
        agent_interface = self._answering_interface(linkedid)
        if agent_interface == phone:
            raise SpyOnOwnPhone("this call is on your own phone")
        agent = await spy_sessions.agent_by_interface(self.db, agent_interface)
        if agent is None:
            raise CallNotAnswered(f"no user has the phone {agent_interface} that took this call")
        if supervisor.role != "admin" and supervisor.region not in (None, agent.region):
            raise SpyOutOfScope(
                f"the agent {agent.username} is outside your region", linkedid=linkedid
            )
        target = await self._agent_channel(linkedid, agent_interface)
        claim = spy_sessions.SpyClaim(
            supervisor.id,
            agent.id,
            self.server,
            linkedid,
            mode.value,
            ACTION_PREFIX + request_id,
            target,
            ip,
        )
        row, new = await spy_sessions.claim(self.db, claim)
        if new:
            await self._originate(phone, target, mode, request_id)
        return {**spy_sessions.as_dict(row), "new": new, "spied_channel": target}

    def _answering_interface(self, linkedid: str) -> str:
        call = self.tracker.call(self.server, linkedid)
        if call is None or call.state is CallState.ENDED:
            raise CallNotLive(f"call {linkedid} is not in progress", linkedid=linkedid)
        if call.state is not CallState.CONNECTED or not call.answered_by:
            raise CallNotAnswered(f"call {linkedid} has not been answered by an agent yet")
        return call.answered_by

    async def _agent_channel(self, linkedid: str, interface: str) -> str:
        """The agent's channel on this call (`PJSIP/1001-0000002a`). ChanSpy matches names
        by prefix, so a bare `PJSIP/1001` would also catch `PJSIP/10010`; when the channel
        list cannot be read, `PJSIP/1001-` still names this phone only."""
        fallback = interface + "-"
        try:
            reply = await self.ami.action(self.server, {"Action": "CoreShowChannels"}, timeout=3.0)
        except HotlineError as exc:
            log.warning("spy: channel list unavailable (%s); spying on %s", exc, fallback)
            return fallback
        for event in getattr(reply, "events", ()):
            channel = event.headers.get("Channel", "")
            if event.headers.get("Linkedid") == linkedid and channel.startswith(fallback):
                return str(channel)
        return fallback

    async def _originate(self, phone: str, target: str, mode: SpyMode, request_id: str) -> None:
        action = {
            "Action": "Originate",
            "ActionID": ACTION_PREFIX + request_id,
            "ChannelId": CHANNEL_PREFIX + request_id,
            "Channel": phone,
            "Application": "ChanSpy",
            "Data": chanspy_data(target, mode),
            "CallerID": f"spy <{mode.value}>",
            "Timeout": str(RING_TIMEOUT_MS),
            "Async": "true",
        }
        try:
            await self.ami.action(self.server, action)
        except HotlineError as exc:
            await spy_sessions.mark_ended(
                self.db, ACTION_PREFIX + request_id, time.time(), f"not placed: {exc.message}"
            )
            raise SpyFailed(f"the supervisor's phone could not be rung: {exc.message}") from None

    def on_event(self, server: str, event: AmiEventLike) -> None:
        """Fed every AMI event by the CTI bridge; only our supervisor legs are acted on, in
        order, off the event path (the database writes must not hold up a ring)."""
        if server != self.server or event.name not in ("OriginateResponse", "Hangup"):
            return
        h = event.headers
        if event.name == "Hangup":
            action_id = _session_of(h.get("Uniqueid", ""))
            if action_id is not None:
                reason = h.get("Cause-txt", "")
                self._later(spy_sessions.mark_ended(self.db, action_id, _timestamp(h), reason))
            return
        action_id = h.get("ActionID", "")
        if not action_id.startswith(ACTION_PREFIX):
            return
        if h.get("Response") == "Success":
            channel = h.get("Channel", "")
            self._later(spy_sessions.mark_answered(self.db, action_id, channel, _timestamp(h)))
        else:
            reason = f"supervisor phone: {h.get('Reason', '')} {h.get('Response', '')}".strip()
            self._later(spy_sessions.mark_ended(self.db, action_id, _timestamp(h), reason))

    def on_call_ended(self, event: CallEnded) -> None:
        """After an AMI reconnect the tracker ends the calls the PBX no longer has; a
        supervisor leg that hung up meanwhile ends its session that way."""
        action_id = _session_of(event.linkedid)
        if action_id is not None and event.server == self.server:
            self._later(spy_sessions.mark_ended(self.db, action_id, event.at, event.reason))

    def _later(self, work: Coroutine[Any, Any, object]) -> None:
        previous = self._tail

        async def run() -> None:
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)
            try:
                await work
            except Exception:
                log.exception("spy session bookkeeping failed")

        self._tail = asyncio.create_task(run(), name="spy-session")

    async def drain(self) -> None:
        """Wait for the session writes queued so far (tests, shutdown)."""
        while self._tail is not None and not self._tail.done():
            await asyncio.gather(self._tail, return_exceptions=True)
