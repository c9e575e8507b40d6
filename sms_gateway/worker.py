"""The outbox worker: claim due messages, reconcile, send, record; retry with backoff.

Exactly once, step by step:
1. Claim: a compare-and-set UPDATE moves the row to `sending` with a lease; only one worker
   (on any node) wins it. The claim commits before the provider is called.
2. If an earlier attempt may have reached the provider (attempts > 0, no SID recorded), ask
   the provider first (`find_sent`); if it has the message, record its SID and stop.
3. Send, then record the provider SID in a new transaction.
A crash after 1 leaves a `sending` row whose lease runs out; the next claim goes through 2.
So a message is never lost (zero sends) and, given `find_sent`, never sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select, update

from crm_core.db import Database
from crm_core.events import EventBus, SmsStatusChanged
from crm_core.models import utcnow
from sms_gateway.backends import Accepted, OutgoingSms, SmsBackend
from sms_gateway.errors import SendError
from sms_gateway.models import SmsMessage
from sms_gateway.outbox import FAILED, PENDING, SENDING, SENT
from sms_gateway.status import best_status

log = logging.getLogger(__name__)
# A test hook: called with a step name ("claimed", "sent") to simulate a crash there.
FaultHook = Callable[[str, OutgoingSms], None]


def backoff(attempt: int, base: float = 5.0, cap: float = 900.0) -> timedelta:
    """Exponential with full jitter: attempt 1 waits up to 5 s, then 10, 20 … at most 15 min."""
    return timedelta(seconds=random.uniform(base / 2, min(cap, base * 2 ** (attempt - 1))))


class OutboxWorker:
    def __init__(
        self,
        db: Database,
        backend: SmsBackend,
        *,
        bus: EventBus | None = None,
        node_id: str | None = None,
        lease: timedelta = timedelta(seconds=60),
        max_attempts: int = 8,
        batch: int = 50,
        concurrency: int = 8,
        clock: Callable[[], datetime] = utcnow,
        fault: FaultHook | None = None,
    ) -> None:
        self.db = db
        self.backend = backend
        self.bus = bus or EventBus()
        self.node_id = node_id or f"{socket.gethostname()}:{id(self):x}"
        self.lease = lease
        self.max_attempts = max_attempts
        self.batch = batch
        self.concurrency = concurrency
        self.clock = clock
        self.fault = fault
        self.wake = asyncio.Event()

    def _claimable(self, now: datetime) -> ColumnElement[bool]:
        return or_(
            (SmsMessage.state == PENDING) & (SmsMessage.next_attempt_at <= now),
            (SmsMessage.state == SENDING) & (SmsMessage.lease_until < now),
        )

    async def _claim_batch(self) -> list[tuple[OutgoingSms, bool]]:
        """Claim up to `batch` due messages in one statement. The WHERE is re-checked per row
        under its write lock, so two workers never claim the same row. Returns each message
        with whether this is its first attempt."""
        now = self.clock()
        async with self.db.transaction() as session:
            ids = (
                await session.scalars(
                    select(SmsMessage.id)
                    .where(self._claimable(now))
                    .order_by(SmsMessage.id)
                    .limit(self.batch)
                )
            ).all()
            if not ids:
                return []
            claimed = await session.execute(
                update(SmsMessage)
                .where(SmsMessage.id.in_(ids), self._claimable(now))
                .values(
                    state=SENDING,
                    attempts=SmsMessage.attempts + 1,
                    lease_until=now + self.lease,
                    claimed_by=self.node_id,
                    first_attempt_at=func.coalesce(SmsMessage.first_attempt_at, now),
                )
                .returning(
                    SmsMessage.id,
                    SmsMessage.key,
                    SmsMessage.to,
                    SmsMessage.body,
                    SmsMessage.first_attempt_at,
                    SmsMessage.attempts,
                    SmsMessage.template,
                    SmsMessage.params,
                )
                .execution_options(synchronize_session=False)
            )
            rows = sorted(claimed.all())
        return [
            (OutgoingSms(i, k, t, b, f or now, kind, dict(p or {})), n == 1)
            for i, k, t, b, f, n, kind, p in rows
        ]

    async def run_once(self) -> int:
        """Process the messages due now; return how many the provider accepted (sent or
        found already sent)."""
        claimed = await self._claim_batch()
        if not claimed:
            return 0
        gate = asyncio.Semaphore(self.concurrency)

        async def one(message: OutgoingSms, first: bool) -> bool:
            async with gate:
                return await self._deliver(message, first=first)

        results = await asyncio.gather(*(one(m, first) for m, first in claimed))
        return sum(results)

    async def _deliver(self, message: OutgoingSms, *, first: bool) -> bool:
        if self.fault:
            self.fault("claimed", message)
        try:
            accepted = None if first else await self.backend.find_sent(message)
            if accepted is None:
                accepted = await self.backend.send(message)
                if self.fault:
                    self.fault("sent", message)
        except SendError as exc:
            await self._failed(message, exc)
            return False
        await self._record(message, accepted)
        return True

    async def _record(self, message: OutgoingSms, accepted: Accepted) -> None:
        now = self.clock()
        async with self.db.transaction() as session:
            row = await session.get(SmsMessage, message.id, with_for_update=True)
            assert row is not None
            row.state, row.provider, row.provider_sid = SENT, self.backend.name, accepted.sid
            row.lease_until, row.sent_at, row.error = None, now, None
            # A callback may have beaten this commit; it is stored, so merge it in.
            row.provider_status = await best_status(session, accepted.sid, accepted.status)
            row.status_at = now
            status = row.provider_status or accepted.status
        await self.bus.publish(SmsStatusChanged(message.id, accepted.sid, status, None))

    async def _failed(self, message: OutgoingSms, exc: SendError) -> None:
        now = self.clock()
        async with self.db.transaction() as session:
            row = await session.get(SmsMessage, message.id, with_for_update=True)
            assert row is not None
            row.error = (f"{exc.code}: " if exc.code else "") + str(exc)[:400]
            row.lease_until = None
            if exc.permanent or row.attempts >= self.max_attempts:
                row.state = FAILED
                log.error("SMS %s to %s failed for good: %s", row.id, row.to, row.error)
            else:
                row.state = PENDING
                row.next_attempt_at = now + backoff(row.attempts)
                log.warning("SMS %s attempt %d failed: %s", row.id, row.attempts, row.error)

    async def run(self, interval: float = 1.0) -> None:
        """Poll until cancelled; `wake.set()` after an enqueue makes it look at once."""
        while True:
            try:
                while await self.run_once():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("SMS outbox round failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=interval)
            self.wake.clear()
