"""The outbox: an SMS is a row written in the caller's transaction, sent later by the worker.

`enqueue` takes the caller's session, so the message commits or rolls back together with the
change that caused it. The idempotency key is unique: enqueueing the same key twice stores
one message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.models import utcnow
from sms_gateway.models import SmsMessage
from sms_gateway.segments import count_segments
from sms_gateway.templates import render

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
MAX_KEY = 200


class Notice(Protocol):
    """Ticketing's SmsNotice, by shape (sms_gateway may not import ticketing)."""

    @property
    def to(self) -> str: ...
    @property
    def template(self) -> str: ...
    @property
    def params(self) -> Mapping[str, str]: ...
    @property
    def key(self) -> str: ...
    @property
    def request_id(self) -> int | None: ...


async def enqueue(
    session: AsyncSession,
    to: str,
    body: str,
    key: str,
    request_id: int | None = None,
    *,
    template: str | None = None,
    params: Mapping[str, str] | None = None,
) -> None:
    """Store one outgoing SMS in the caller's transaction; a repeated key is ignored.
    `template` and `params` are kept for providers that send approved templates only."""
    now = utcnow()
    values = {
        "key": key[:MAX_KEY],
        "to": to,
        "body": body,
        "template": template,
        "params": {k: str(v) for k, v in (params or {}).items()},
        "segments": count_segments(body).segments,
        "request_id": request_id,
        "state": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(SmsMessage).values(**values).on_conflict_do_nothing(index_elements=["key"])
    await session.execute(statement)


async def enqueue_notice(session: AsyncSession, notice: Notice) -> None:
    """The `Notifier` the composition root hands to ticketing: render, then enqueue."""
    body = render(notice.template, notice.params)
    await enqueue(
        session,
        notice.to,
        body,
        notice.key,
        notice.request_id,
        template=notice.template,
        params=notice.params,
    )


async def messages_for_request(session: AsyncSession, request_id: int) -> list[SmsMessage]:
    rows = await session.scalars(
        select(SmsMessage).where(SmsMessage.request_id == request_id).order_by(SmsMessage.id)
    )
    return list(rows.all())
