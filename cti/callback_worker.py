"""The queue-callback worker: calls back the callers who pressed 1, in the order they joined.

Once a second, per queue, the waiting job with the earliest place goes out when no caller
who joined before it is still waiting in that queue (its place has reached the front). The
call is an AMI Originate of a Local channel whose queue half waits at the head of the queue
for a free agent (who gets the customer's pop, as for any queue call); when the agent
answers, the other half dials the customer. See cti/callbacks.py for the exactly-once rules
and asterisk_conf's extensions.conf.j2 (hotline-callback) for the dialplan side.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import cti.callbacks as callbacks
from crm_core.db import Database
from crm_core.errors import HotlineError, ValidationError
from cti.ami_errors import AmiNotConnected
from cti.click_to_dial import dial_string

log = logging.getLogger(__name__)
PERIOD = 1.0
# How long an attempt may wait for an agent before Asterisk gives up on it (the queue's own
# longest wait ends it sooner).
ATTEMPT_SECONDS = 1800
# An attempt younger than this is left alone by the restart check: its channel may not
# exist yet.
SETTLE_AFTER = timedelta(seconds=20)
NOT_SENT_RETRY = timedelta(seconds=5)
CUSTOMER_CONTEXT = "hotline-callback-customer"
ASTDB_FAMILY = "hotline-callback"
WaitingBefore = Callable[[str, float], bool]  # (queue, epoch) -> a caller who joined earlier waits


class CallbackPbx(Protocol):
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
    ) -> Any: ...

    async def action(
        self, server: str, action: Mapping[str, Any], *, timeout: float | None = None
    ) -> Any: ...


def local_channel(attempt_id: str) -> str:
    # /n: the Local pair must not be optimised away, so its name (which carries the attempt)
    # stays visible in CoreShowChannels for as long as the callback call lasts.
    return f"Local/cb{attempt_id}@hotline-callback/n"


class CallbackWorker:
    def __init__(
        self,
        db: Database,
        pbx: CallbackPbx,
        server: str,
        waiting_before: WaitingBefore,
        *,
        period: float = PERIOD,
    ) -> None:
        self.db = db
        self.pbx = pbx
        self.server = server
        self.waiting_before = waiting_before
        self.period = period
        self.retry_after = timedelta(seconds=db.settings.callback_retry_seconds)
        self.placed = 0  # attempts sent (figures for logs and tests)

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("callback worker tick failed; trying again")
            await asyncio.sleep(self.period)

    async def tick(self) -> None:
        now = datetime.now(UTC)
        await self.settle_stale(now - SETTLE_AFTER)
        fronts: dict[str, Any] = {}
        for job in await callbacks.due(self.db, self.server, now):
            fronts.setdefault(job.queue, job)
        for job in fronts.values():
            if self.waiting_before(job.queue, job.place_at.timestamp()):
                continue
            attempt = await callbacks.claim(self.db, job)
            if attempt is not None:
                await self._place(attempt)

    async def _place(self, attempt: callbacks.Attempt) -> None:
        try:
            national, _ = dial_string(attempt.number, self.db.settings.home_area_code)
        except ValidationError:
            log.warning(
                "callback %s: %r is not a number we can dial", attempt.job_id, attempt.number
            )
            await callbacks.record_result(self.db, attempt.attempt_id, "BAD_NUMBER", timedelta(0))
            return
        try:
            await self.pbx.originate(
                self.server,
                channel=local_channel(attempt.attempt_id),
                context=CUSTOMER_CONTEXT,
                exten=national,
                request_id=f"callback-{attempt.attempt_id}",
                caller_id=f"<{attempt.number}>",
                variables={"HOTLINE_CALLBACK_ATTEMPT": attempt.attempt_id},
                ring_timeout=ATTEMPT_SECONDS,
            )
        except AmiNotConnected:
            await callbacks.release(self.db, attempt.attempt_id, NOT_SENT_RETRY)
            return
        except HotlineError as exc:
            log.error("callback attempt %s was refused: %s", attempt.attempt_id, exc.message)
            await callbacks.record_result(
                self.db, attempt.attempt_id, "ORIGINATE_FAILED", self.retry_after
            )
            return
        self.placed += 1
        log.info("callback attempt %s placed (%s)", attempt.attempt_id, attempt.queue)

    async def settle_stale(self, older_than: datetime) -> None:
        """Attempts without a result: the PBX's ASTdb has it when the dialplan got that far
        (we were down or the FastAGI failed); a live channel means it is still going on;
        neither means it never dialled the customer, so it may be tried again."""
        stale = await callbacks.in_flight(self.db, self.server, older_than)
        if not stale:
            return
        try:
            live = await self._live_channels()
        except HotlineError:
            return  # cannot see the PBX: decide nothing
        for job in stale:
            chosen = job.attempt_id or ""
            if any(name.startswith(local_channel(chosen)[:-2] + "-") for name in live):
                continue
            result = await self._astdb_result(chosen)
            await callbacks.record_result(self.db, chosen, result or "LOST", self.retry_after)
            log.info("callback attempt %s settled after the fact: %s", chosen, result or "LOST")

    async def _live_channels(self) -> list[str]:
        reply = await self.pbx.action(self.server, {"Action": "CoreShowChannels"})
        return [event.headers.get("Channel", "") for event in reply.events]

    async def _astdb_result(self, chosen: str) -> str | None:
        try:
            reply = await self.pbx.action(
                self.server, {"Action": "DBGet", "Family": ASTDB_FAMILY, "Key": chosen}
            )
        except HotlineError:
            return None  # "Database entry not found" comes back as an error
        for event in reply.events:
            value = event.headers.get("Val")
            if value:
                return str(value)
        return None
