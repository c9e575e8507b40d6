"""The delivery worker: claim due rows, POST them signed, record the answer, retry later.

Discipline (the SMS outbox's, sms_gateway/worker.py):
1. Claim commits before any request: on PostgreSQL `SELECT … FOR UPDATE SKIP LOCKED`, so
   workers on several nodes take disjoint rows, then an UPDATE to `sending` with a lease
   (claimed_by, claimed_until) whose WHERE re-checks the row is still claimable.
2. Send with a timeout. 2xx is delivered; 410 Gone fails the row and disables the endpoint;
   anything else is retried with exponential backoff and jitter, `failed` after max_attempts.
3. Record only if this node still holds the claim. A node that dies after 1 leaves a row
   whose lease runs out; another node sends it then. The receiver dedupes on the delivery id
   for the one case no sender can rule out: it died after the receiver answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
from sqlalchemy import ColumnElement, or_, select, update

from crm_core.db import Database
from crm_core.models import utcnow
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.outbox import DELIVERED, FAILED, PENDING, SENDING
from webhooks.signing import signature_header

log = logging.getLogger(__name__)
EXCERPT = 500
USER_AGENT = "hotline-webhooks/1"


def backoff(attempt: int, base: float = 10.0, cap: float = 3600.0) -> timedelta:
    """Full jitter: attempt 1 waits 5-10 s, then up to 20, 40 … at most an hour."""
    return timedelta(seconds=random.uniform(base / 2, min(cap, base * 2 ** (attempt - 1))))


@dataclass(frozen=True)
class Claimed:
    id: int
    uuid: str
    event_type: str
    body: str
    attempts: int
    url: str
    secret: str


@dataclass(frozen=True)
class Outcome:
    status: int | None
    error: str | None
    excerpt: str | None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class DeliveryWorker:
    def __init__(
        self,
        db: Database,
        *,
        node_id: str | None = None,
        lease: timedelta = timedelta(seconds=60),
        max_attempts: int = 10,
        timeout: float = 10.0,
        batch: int = 50,
        concurrency: int = 8,
        clock: Callable[[], datetime] = utcnow,
        retry_after: Callable[[int], timedelta] = backoff,
    ) -> None:
        self.db = db
        self.node_id = node_id or f"{socket.gethostname()}:{id(self):x}"
        self.lease = lease
        self.max_attempts = max_attempts
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.batch = batch
        self.concurrency = concurrency
        self.clock = clock
        self.retry_after = retry_after
        self.wake = asyncio.Event()
        self.stopping = False

    def _claimable(self, now: datetime) -> ColumnElement[bool]:
        return or_(
            (WebhookDelivery.state == PENDING) & (WebhookDelivery.next_attempt_at <= now),
            (WebhookDelivery.state == SENDING) & (WebhookDelivery.claimed_until < now),
        )

    async def claim(self) -> list[Claimed]:
        now = self.clock()
        async with self.db.transaction() as session:
            due = (
                select(WebhookDelivery.id)
                .where(self._claimable(now))
                .order_by(WebhookDelivery.id)
                .limit(self.batch)
            )
            if session.bind is not None and session.bind.dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            ids = (await session.scalars(due)).all()
            if not ids:
                return []
            claimed = await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(ids), self._claimable(now))
                .values(
                    state=SENDING,
                    attempts=WebhookDelivery.attempts + 1,
                    claimed_by=self.node_id,
                    claimed_until=now + self.lease,
                    last_attempt_at=now,
                )
                .returning(WebhookDelivery.id)
                .execution_options(synchronize_session=False)
            )
            mine = [row[0] for row in claimed.all()]
            rows = await session.execute(
                select(WebhookDelivery, WebhookEndpoint)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(WebhookDelivery.id.in_(mine))
                .order_by(WebhookDelivery.id)
            )
            return [
                Claimed(d.id, d.uuid, d.event_type, d.body, d.attempts, e.url, e.secret)
                for d, e in rows.all()
            ]

    async def run_once(self) -> int:
        """Send what is due now; returns how many rows were claimed."""
        claimed = await self.claim()
        if not claimed:
            return 0
        gate = asyncio.Semaphore(self.concurrency)
        async with aiohttp.ClientSession(timeout=self.timeout) as http:

            async def one(item: Claimed) -> None:
                async with gate:
                    await self.deliver(http, item)

            await asyncio.gather(*(one(item) for item in claimed))
        return len(claimed)

    async def deliver(self, http: aiohttp.ClientSession, item: Claimed) -> Outcome:
        outcome = await self.send(http, item)
        await self._record(item, outcome)
        return outcome

    async def send_and_record(self, item: Claimed) -> Outcome:
        async with aiohttp.ClientSession(timeout=self.timeout) as http:
            return await self.deliver(http, item)

    async def send(self, http: aiohttp.ClientSession, item: Claimed) -> Outcome:
        body = item.body.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Hotline-Event": item.event_type,
            "X-Hotline-Delivery": item.uuid,
            "X-Hotline-Signature": signature_header(item.secret, body),
        }
        try:
            async with http.post(item.url, data=body, headers=headers, allow_redirects=False) as r:
                text = (await r.content.read(EXCERPT)).decode("utf-8", "replace")
                return Outcome(r.status, None if r.status < 300 else f"HTTP {r.status}", text)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Outcome(None, f"{type(exc).__name__}: {exc}"[:EXCERPT], None)

    async def _record(self, item: Claimed, outcome: Outcome) -> None:
        now = self.clock()
        values: dict[str, object] = {
            "last_status": outcome.status,
            "last_error": outcome.error,
            "response_excerpt": outcome.excerpt,
            "claimed_until": None,
        }
        gone = outcome.status == 410
        if outcome.delivered:
            values.update(state=DELIVERED, delivered_at=now)
        elif gone or item.attempts >= self.max_attempts:
            values.update(state=FAILED)
        else:
            values.update(state=PENDING, next_attempt_at=now + self.retry_after(item.attempts))
        async with self.db.transaction() as session:
            # Only while the claim is still ours: a lease that ran out belongs to another node.
            result = await session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == item.id,
                    WebhookDelivery.state == SENDING,
                    WebhookDelivery.claimed_by == self.node_id,
                )
                .values(**values)
                .returning(WebhookDelivery.endpoint_id)
            )
            endpoint_id = result.scalar_one_or_none()
            if gone and endpoint_id is not None:
                await session.execute(
                    update(WebhookEndpoint)
                    .where(WebhookEndpoint.id == endpoint_id)
                    .values(active=False, disabled_reason="410 Gone", updated_at=now)
                )
        if not outcome.delivered:
            log.warning("webhook %s attempt %d: %s", item.uuid, item.attempts, outcome.error)

    async def run(self, interval: float = 1.0) -> None:
        """Poll until `stop()` (or cancelled); `wake.set()` after an enqueue makes it look at
        once."""
        while not self.stopping:
            try:
                while not self.stopping and await self.run_once():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook delivery round failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=interval)
            self.wake.clear()

    async def stop(self, runner: asyncio.Task[None], grace: float = 15.0) -> None:
        """End `runner` (this worker's `run`) between rounds. A cancel in the middle of a
        round could leave a claim's transaction open on its connection, holding row locks
        that a shutdown (or the next test's TRUNCATE) then waits on for ever; a round in
        flight is given `grace` seconds (its requests time out sooner) before the cancel."""
        self.stopping = True
        self.wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(runner), timeout=grace)
        except TimeoutError:
            runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
