"""Outbound webhooks (issue #21 §3; docs/webhooks.md): a real receiver on loopback checks
the signature; a receiver that is down gets the delivery later, exactly once; several
workers never send a row twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from hook_receiver import Receiver, free_port
from sqlalchemy import select

from agent_desktop.webhooks.http import WebActor
from agent_desktop.webhooks.services import create_endpoint
from crm_core.db import Database
from crm_core.events import TicketTransitioned
from crm_core.models import utcnow
from webhooks import outbox
from webhooks.events import WebhookEvent, from_domain
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.signing import signature_header, verify
from webhooks.worker import DeliveryWorker

ADMIN = WebActor(None, "test", None, "cli")
CREATED = TicketTransitioned(7, "request", 7, "create", None, "new", 3)


def no_wait(_attempt: int) -> timedelta:
    return timedelta(0)


def worker(db: Database, **kw: Any) -> DeliveryWorker:
    return DeliveryWorker(db, timeout=2.0, retry_after=no_wait, **kw)


async def endpoint(db: Database, url: str, events: list[str] | None = None) -> tuple[int, str]:
    values = {"name": "erp", "url": url, "events": events or ["service_request.created"]}
    row, secret = await create_endpoint(db, ADMIN, values)
    return int(row["id"]), secret


async def rows(db: Database) -> list[WebhookDelivery]:
    async with db.transaction() as session:
        return list((await session.scalars(select(WebhookDelivery))).all())


async def test_a_receiver_verifies_the_signature_of_a_published_event(
    db: Database, receiver: Receiver
) -> None:
    _, receiver.secret = await endpoint(db, receiver.url)
    event = from_domain(CREATED)
    assert event is not None and event.type == "service_request.created"
    assert await outbox.enqueue(db, event) == 1
    assert await worker(db).run_once() == 1
    assert receiver.bad_signatures == 0
    [got] = receiver.accepted
    assert got["event"] == "service_request.created"
    payload = got["payload"]
    assert set(payload) == {"id", "type", "created_at", "data"}
    assert payload["data"]["request_id"] == 7 and payload["data"]["to_state"] == "new"
    [row] = await rows(db)
    assert (row.state, row.attempts, row.last_status) == ("delivered", 1, 200)
    assert row.uuid == got["delivery"] and row.event_id == payload["id"]


async def test_unsubscribed_and_inactive_endpoints_get_nothing(
    db: Database, receiver: Receiver
) -> None:
    await endpoint(db, receiver.url, ["work_order.completed"])
    assert await outbox.enqueue(db, WebhookEvent("service_request.created", {})) == 0
    assert await rows(db) == []


async def test_a_tampered_secret_fails_verification(db: Database, receiver: Receiver) -> None:
    _, secret = await endpoint(db, receiver.url)
    receiver.secret = secret + "x"
    await outbox.enqueue(db, WebhookEvent("service_request.created", {"n": 1}))
    await worker(db).run_once()
    assert receiver.bad_signatures == 1 and receiver.accepted == []
    [row] = await rows(db)
    assert (row.state, row.last_status) == ("pending", 401)
    body = b'{"a":1}'
    header = signature_header(secret, body)
    assert verify(secret, header, body)
    assert not verify(secret + "x", header, body)
    assert not verify(secret, header, b'{"a":2}')
    assert not verify(secret, signature_header(secret, body, 1_000), body)


async def test_a_receiver_that_is_down_gets_the_delivery_later_exactly_once(
    db: Database,
) -> None:
    receiver = Receiver(port=free_port())  # nothing listens on the port yet
    _, receiver.secret = await endpoint(db, receiver.url)
    await outbox.enqueue(db, WebhookEvent("service_request.created", {"n": 1}))
    sender = worker(db)
    await sender.run_once()
    [row] = await rows(db)
    assert (row.state, row.attempts, row.last_status) == ("pending", 1, None)
    assert row.last_error and "Connect" in row.last_error
    await receiver.start()
    try:
        receiver.answer = 503  # up, but not ready
        await sender.run_once()
        [row] = await rows(db)
        assert (row.state, row.attempts, row.last_status) == ("pending", 2, 503)
        receiver.answer = 200
        await sender.run_once()
        for _ in range(3):  # nothing more to send
            assert await sender.run_once() == 0
    finally:
        await receiver.stop()
    assert len(receiver.accepted) == 1 and receiver.duplicates == 0
    [row] = await rows(db)
    assert (row.state, row.attempts, row.last_status) == ("delivered", 3, 200)
    assert receiver.accepted[0]["delivery"] == row.uuid


async def test_410_gone_fails_the_row_and_disables_the_endpoint(
    db: Database, receiver: Receiver
) -> None:
    endpoint_id, receiver.secret = await endpoint(db, receiver.url)
    receiver.answer = 410
    await outbox.enqueue(db, WebhookEvent("service_request.created", {}))
    await worker(db).run_once()
    [row] = await rows(db)
    assert (row.state, row.last_status) == ("failed", 410)
    async with db.transaction() as session:
        hook = await session.get(WebhookEndpoint, endpoint_id)
        assert hook is not None and not hook.active and hook.disabled_reason == "410 Gone"
    assert await outbox.enqueue(db, WebhookEvent("service_request.created", {})) == 0


async def test_after_max_attempts_a_delivery_fails(db: Database, receiver: Receiver) -> None:
    _, receiver.secret = await endpoint(db, receiver.url)
    receiver.answer = 500
    await outbox.enqueue(db, WebhookEvent("service_request.created", {}))
    sender = worker(db, max_attempts=3)
    for _ in range(5):
        await sender.run_once()
    [row] = await rows(db)
    assert (row.state, row.attempts, row.last_status) == ("failed", 3, 500)
    assert receiver.requests == 3


async def test_a_claim_whose_node_died_is_sent_by_another_after_the_lease(
    db: Database, receiver: Receiver
) -> None:
    _, receiver.secret = await endpoint(db, receiver.url)
    await outbox.enqueue(db, WebhookEvent("service_request.created", {}))
    dead = worker(db, node_id="dead", lease=timedelta(seconds=30))
    [claimed] = await dead.claim()  # then the node dies before sending
    alive = worker(db, node_id="alive")
    assert await alive.run_once() == 0  # the lease still holds
    later = worker(db, node_id="later", clock=lambda: utcnow() + timedelta(seconds=31))
    assert await later.run_once() == 1
    assert len(receiver.accepted) == 1
    # The dead node's late answer must not overwrite the row another node owns now.
    outcome = await dead.send_and_record(claimed)
    [row] = await rows(db)
    assert (row.state, row.claimed_by, row.attempts) == ("delivered", "later", 2)
    assert outcome.delivered and receiver.duplicates == 1  # the receiver dedupes it


N_EVENTS = 120


async def test_two_workers_deliver_every_event_once(db: Database, receiver: Receiver) -> None:
    if db.settings.is_sqlite:
        pytest.skip("several workers at once are a PostgreSQL deployment (docs/deploy.md)")
    _, receiver.secret = await endpoint(db, receiver.url)
    for n in range(N_EVENTS):
        await outbox.enqueue(db, WebhookEvent("service_request.created", {"n": n}))
    nodes = [Database.open(db.settings) for _ in range(2)]
    workers = [worker(node, node_id=f"node{i}", batch=7) for i, node in enumerate(nodes)]
    tasks = [asyncio.create_task(w.run(0.05)) for w in workers]
    try:
        async with asyncio.timeout(60):
            while receiver.requests < N_EVENTS:
                receiver.arrived.clear()
                await receiver.arrived.wait()
        await asyncio.sleep(0.3)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for node in nodes:
            await node.close()
    counts = Counter(a["delivery"] for a in receiver.accepted)
    assert receiver.duplicates == 0 and receiver.requests == N_EVENTS
    assert len(counts) == N_EVENTS and set(counts.values()) == {1}
    done = await rows(db)
    assert {r.state for r in done} == {"delivered"}
    assert {r.claimed_by for r in done} == {"node0", "node1"}  # both took part
