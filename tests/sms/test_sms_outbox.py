"""The outbox: stored with the change, sent once, retried with backoff, reconciled after a
crash between commit and send."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from cn_providers import PROVIDERS, running
from fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio
from sms_edge import fake_fixture  # noqa: F401  (registers the fixture)
from sqlalchemy import func, select

from crm_core.db import Database
from sms_gateway.backends import LocalBackend, OutgoingSms
from sms_gateway.models import SmsMessage
from sms_gateway.outbox import enqueue
from sms_gateway.twilio_backend import TwilioBackend
from sms_gateway.worker import OutboxWorker, backoff

TO = "+8613800000001"


class SimulatedCrash(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the worker catches it."""


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def twilio(fake: FakeTwilio) -> AsyncIterator[TwilioBackend]:
    backend = TwilioBackend(
        ACCOUNT_SID, AUTH_TOKEN, from_number=FROM_NUMBER, api_base_url=fake.base_url
    )
    yield backend
    await backend.close()


async def rows(db: Database) -> list[SmsMessage]:
    async with db.transaction() as s:
        return list((await s.scalars(select(SmsMessage).order_by(SmsMessage.id))).all())


async def test_enqueue_rolls_back_with_its_transaction_and_dedupes_keys(db: Database) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with db.transaction() as s:
            await enqueue(s, TO, "派工单1", "k1")
            raise Boom
    assert await rows(db) == []
    async with db.transaction() as s:
        await enqueue(s, TO, "派工单1", "k1")
        await enqueue(s, TO, "派工单1 again", "k1")
    async with db.transaction() as s:
        await enqueue(s, TO, "派工单1 third", "k1")
    stored = await rows(db)
    assert [(m.key, m.body, m.segments, m.state) for m in stored] == [
        ("k1", "派工单1", 1, "pending")
    ]


async def test_local_backend_marks_delivered(db: Database) -> None:
    async with db.transaction() as s:
        await enqueue(s, TO, "你好", "local-1")
    assert await OutboxWorker(db, LocalBackend()).run_once() == 1
    (message,) = await rows(db)
    assert (message.state, message.provider, message.provider_status) == (
        "sent",
        "local",
        "delivered",
    )
    assert await OutboxWorker(db, LocalBackend()).run_once() == 0


async def test_twilio_send_records_sid(
    db: Database, fake: FakeTwilio, twilio: TwilioBackend
) -> None:
    async with db.transaction() as s:
        await enqueue(s, TO, "【派工单7】测试", "tw-1")
    assert await OutboxWorker(db, twilio).run_once() == 1
    (message,) = await rows(db)
    assert [m["sid"] for m in fake.messages] == [message.provider_sid]
    assert fake.messages[0]["body"] == "【派工单7】测试" and fake.messages[0]["to"] == TO
    assert message.provider_status == "queued"


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("crash_at", ["claimed", "sent"])
async def test_crash_between_commit_and_send_sends_exactly_once(
    db: Database, provider: str, crash_at: str
) -> None:
    async with db.transaction() as s:
        await enqueue(
            s, TO, f"crash at {crash_at}", "crash-1", template="command_ok", params={"order": "7"}
        )
    clock = Clock()

    def crash(step: str, _message: OutgoingSms) -> None:
        if step == crash_at:
            raise SimulatedCrash

    async with running(provider) as p:
        with pytest.raises(SimulatedCrash):
            await OutboxWorker(db, p.backend, clock=clock, fault=crash).run_once()
        (message,) = await rows(db)
        assert message.state == "sending" and message.provider_sid is None
        # The restarted worker waits for the lease, then reconciles before sending.
        restarted = OutboxWorker(db, p.backend, clock=clock)
        assert await restarted.run_once() == 0
        clock.now += timedelta(seconds=61)
        assert await restarted.run_once() == 1
        assert await restarted.run_once() == 0
        (record,) = p.sent_to(TO)
        (message,) = await rows(db)
        assert message.state == "sent" and message.provider == provider
        # Aliyun's detail records carry our OutId, not always the BizId (see the backend).
        found_by_out_id = provider == "aliyun" and crash_at == "sent"
        expected = f"hotline-{message.id}" if found_by_out_id else p.sid(record)
        assert message.provider_sid == expected


async def test_transient_failures_back_off_then_send_once(
    db: Database, fake: FakeTwilio, twilio: TwilioBackend
) -> None:
    fake.fail_next = 2
    async with db.transaction() as s:
        await enqueue(s, TO, "retry me", "retry-1")
    clock = Clock()
    worker = OutboxWorker(db, twilio, clock=clock)
    for attempt in (1, 2):
        assert await worker.run_once() == 0
        (message,) = await rows(db)
        assert message.state == "pending" and message.attempts == attempt
        assert message.next_attempt_at > clock.now
        clock.now = message.next_attempt_at + timedelta(seconds=1)
    assert await worker.run_once() == 1
    assert len(fake.to(TO)) == 1


async def test_permanent_failure_is_not_retried(db: Database, twilio: TwilioBackend) -> None:
    async with db.transaction() as s:
        await enqueue(s, "12345", "bad number", "bad-1")
    clock = Clock()
    worker = OutboxWorker(db, twilio, clock=clock)
    assert await worker.run_once() == 0
    clock.now += timedelta(days=1)
    assert await worker.run_once() == 0
    (message,) = await rows(db)
    assert message.state == "failed" and message.attempts == 1
    assert message.error is not None and "21211" in message.error


async def test_wrong_credentials_fail_permanently(db: Database, fake: FakeTwilio) -> None:
    backend = TwilioBackend(
        ACCOUNT_SID, "wrong-token", from_number=FROM_NUMBER, api_base_url=fake.base_url
    )
    try:
        async with db.transaction() as s:
            await enqueue(s, TO, "x", "auth-1")
        await OutboxWorker(db, backend).run_once()
    finally:
        await backend.close()
    (message,) = await rows(db)
    assert message.state == "failed" and fake.messages == []


def test_backoff_grows_and_is_capped() -> None:
    assert backoff(1) <= timedelta(seconds=5)
    assert all(backoff(30) <= timedelta(seconds=900) for _ in range(50))


async def test_two_workers_never_send_the_same_message(
    db: Database, fake: FakeTwilio, twilio: TwilioBackend
) -> None:
    import asyncio

    async with db.transaction() as s:
        for i in range(20):
            await enqueue(s, TO, f"msg {i}", f"pair-{i}")
    a, b = OutboxWorker(db, twilio, node_id="a"), OutboxWorker(db, twilio, node_id="b")
    sent = await asyncio.gather(a.run_once(), b.run_once())
    assert sum(sent) == 20
    async with db.transaction() as s:
        assert (
            await s.scalar(
                select(func.count()).select_from(SmsMessage).where(SmsMessage.state == "sent")
            )
            == 20
        )
    assert sorted(m["body"] for m in fake.messages) == sorted(f"msg {i}" for i in range(20))
