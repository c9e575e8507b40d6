"""Outbound webhooks (issue #21 §3; docs/webhooks.md): admin API and pages, the bus
subscription that fills the delivery outbox, and the delivery worker."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict

from aiohttp import web

from agent_desktop.context import CONTEXT_KEY, AppContext
from agent_desktop.webhooks.http import WAKE_KEY, add_routes
from cti.call_events import CallAnswered, CallEnded
from webhooks import outbox
from webhooks.events import DOMAIN_EVENTS, WebhookEvent, from_domain
from webhooks.worker import DeliveryWorker

log = logging.getLogger(__name__)


def from_call(event: CallAnswered | CallEnded) -> WebhookEvent:
    """cti's call events, which the webhooks package may not import. The event id is derived
    from the call, so an event published twice (a leader takeover) is stored once."""
    kind = "call.answered" if isinstance(event, CallAnswered) else "call.ended"
    stable = uuid.uuid5(uuid.NAMESPACE_URL, f"hotline:{kind}:{event.server}:{event.linkedid}")
    return WebhookEvent(kind, asdict(event), str(stable))


class Subscriber:
    """Writes the outbox rows off the publisher's path: the bus awaits its handlers, and
    the CTI bridge publishes on the screen-pop path, which must not wait for a database."""

    def __init__(self, ctx: AppContext, wake: asyncio.Event) -> None:
        self.ctx, self.wake = ctx, wake
        self.tasks: set[asyncio.Task[None]] = set()

    def __call__(self, event: object) -> None:
        found = from_call(event) if isinstance(event, CallAnswered | CallEnded) else None
        found = found or from_domain(event)
        if found is not None:
            task = asyncio.create_task(self._store(found))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _store(self, event: WebhookEvent) -> None:
        try:
            if await outbox.enqueue(self.ctx.db, event):
                self.wake.set()
        except Exception:
            log.exception("webhooks: could not store %s", event.type)

    async def drain(self) -> None:
        await asyncio.gather(*self.tasks, return_exceptions=True)


def setup(app: web.Application, ctx: AppContext) -> None:
    add_routes(app)
    app.cleanup_ctx.append(_delivery_worker)


async def _delivery_worker(app: web.Application) -> AsyncIterator[None]:
    ctx: AppContext = app[CONTEXT_KEY]
    settings = ctx.settings
    worker = DeliveryWorker(
        ctx.db,
        node_id=f"{ctx.cluster.node}:{id(app):x}",
        max_attempts=settings.webhook_max_attempts,
        timeout=settings.webhook_timeout_seconds,
    )
    app[WAKE_KEY] = worker.wake
    subscriber = Subscriber(ctx, worker.wake)
    for event_type in (*DOMAIN_EVENTS, CallAnswered, CallEnded):
        ctx.bus.subscribe(event_type, subscriber)
    # On every node, not only the leader: the claim (SKIP LOCKED plus a lease) keeps two
    # nodes off the same row, and a node that dies hands its rows on when the lease ends.
    runner = asyncio.create_task(worker.run(settings.webhook_poll_seconds), name="webhooks")
    yield
    await subscriber.drain()
    await worker.stop(runner)
