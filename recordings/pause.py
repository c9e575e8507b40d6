"""Pause and resume the recording of a live call while the customer reads out sensitive data.

AMI `MixMonitorMute` with `Direction: both` on the channel that runs MixMonitor (the call's
first channel: its Uniqueid is the Linkedid) writes silence into the file for the span, so
the file keeps its length and the timeline stays true. A pause resumes on its own after
`auto_resume_seconds`; the agent is warned shortly before over the WebSocket.
The composition root supplies the AMI action and the push to the agent: no socket here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from crm_core.db import Database
from recordings.errors import PauseFailed
from recordings.models import RecordingPause

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AmiReply:
    headers: Mapping[str, str]
    events: Sequence[Mapping[str, str]] = ()


AmiAction = Callable[[dict[str, str]], Awaitable[AmiReply]]
Notify = Callable[[int, dict[str, Any]], Awaitable[object]]


@dataclass
class ActivePause:
    row_id: int
    user_id: int
    channel: str
    paused_at: datetime
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class RecordingPauses:
    def __init__(
        self,
        db: Database,
        ami_action: AmiAction,
        notify: Notify,
        auto_resume_seconds: float,
        warn_before_seconds: float = 10.0,
    ) -> None:
        self.db, self.ami_action, self.notify = db, ami_action, notify
        self.auto_resume = auto_resume_seconds
        self.warn_before = min(warn_before_seconds, auto_resume_seconds / 2)
        self.active: dict[tuple[str, str], ActivePause] = {}

    async def _channel(self, linkedid: str) -> str:
        reply = await self.ami_action({"Action": "CoreShowChannels"})
        for item in reply.events:
            if item.get("Uniqueid") == linkedid and item.get("Channel"):
                return item["Channel"]
        raise PauseFailed(f"call {linkedid} has no live recorded channel")

    async def _mute(self, channel: str, muted: bool) -> None:
        action = {
            "Action": "MixMonitorMute",
            "Channel": channel,
            "Direction": "both",
            "State": "1" if muted else "0",
        }
        try:
            await self.ami_action(action)
        except Exception as exc:
            raise PauseFailed(
                f"the PBX refused to {'pause' if muted else 'resume'}: {exc}"
            ) from exc

    def _message(self, kind: str, server: str, linkedid: str, **extra: Any) -> dict[str, Any]:
        return {"v": 1, "type": kind, "server": server, "linkedid": linkedid, **extra}

    async def pause(self, server: str, linkedid: str, user_id: int) -> dict[str, Any]:
        key = (server, linkedid)
        if key in self.active:
            return {"paused": True, "already": True, "resumes_in": self.auto_resume}
        channel = await self._channel(linkedid)
        await self._mute(channel, True)
        now = datetime.now(UTC)
        async with self.db.transaction() as session:
            row = RecordingPause(server=server, linkedid=linkedid, user_id=user_id, paused_at=now)
            session.add(row)
        pause = ActivePause(row.id, user_id, channel, now)
        self.active[key] = pause
        pause.task = asyncio.create_task(self._auto_resume(key), name=f"rec-resume-{linkedid}")
        await self.notify(
            user_id,
            self._message("recording.paused", server, linkedid, resumes_in=self.auto_resume),
        )
        return {"paused": True, "already": False, "resumes_in": self.auto_resume}

    async def resume(self, server: str, linkedid: str, reason: str = "agent") -> dict[str, Any]:
        pause = self.active.pop((server, linkedid), None)
        if pause is None:
            return {"paused": False, "already": True}
        if pause.task is not None and pause.task is not asyncio.current_task():
            pause.task.cancel()
        try:
            if reason != "call_end":
                await self._mute(pause.channel, False)
        finally:
            async with self.db.transaction() as session:
                row = await session.get(RecordingPause, pause.row_id)
                if row is not None:
                    row.resumed_at, row.resumed_by = datetime.now(UTC), reason
        await self.notify(
            pause.user_id, self._message("recording.resumed", server, linkedid, reason=reason)
        )
        return {"paused": False, "already": False, "reason": reason}

    async def _auto_resume(self, key: tuple[str, str]) -> None:
        try:
            await asyncio.sleep(self.auto_resume - self.warn_before)
            pause = self.active.get(key)
            if pause is not None:
                await self.notify(
                    pause.user_id,
                    self._message("recording.resume_warning", *key, resumes_in=self.warn_before),
                )
            await asyncio.sleep(self.warn_before)
            await self.resume(*key, reason="auto")
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("automatic resume of the recording of %s failed", key[1])

    def call_ended(self, server: str, linkedid: str) -> Awaitable[dict[str, Any]] | None:
        """The channel is gone: close the span without an AMI action."""
        if (server, linkedid) not in self.active:
            return None
        return self.resume(server, linkedid, reason="call_end")

    async def stop(self) -> None:
        """On shutdown: resume everything, so no call stays silent without us."""
        for key in list(self.active):
            with contextlib.suppress(Exception):
                await self.resume(*key, reason="shutdown")
