"""API tokens: what a bearer token is worth, and how fast it may be used (docs/api.md).

A token is 32 random bytes; the database keeps its SHA-256 only. Not argon2 like passwords:
a request has to find its token *by* the hash (one indexed lookup), which a salted slow hash
cannot give, and 256 random bits need no stretching against guessing, unlike a password.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select

from agent_desktop.common.errors import NotAuthenticated, RateLimited
from agent_desktop.common.sessions import SessionUser
from agent_desktop.models import ApiToken
from crm_core.db import Database
from crm_core.models import User, utcnow

PREFIX = "hlt_"
# Like sessions: a minute of slack on last_used_at saves a write on nearly every request.
TOUCH_EVERY = timedelta(seconds=60)
BEARER = re.compile(r"Bearer ([A-Za-z0-9_\-]{10,100})")


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_of(header: str) -> str:
    """The token of an `Authorization: Bearer <token>` header; 401 with the reason if not."""
    found = BEARER.fullmatch(header.strip())
    if found is None:
        raise NotAuthenticated(
            "malformed Authorization header: send 'Authorization: Bearer <token>'",
            reason="malformed_authorization",
        )
    return found.group(1)


def principal(row: ApiToken, user: User | None) -> SessionUser:
    """Who the token acts as, in the terms every role and data-scope check already uses."""
    if user is not None:
        return dataclasses.replace(
            SessionUser.of(user), token_id=row.id, must_change_password=False
        )
    return SessionUser(
        -row.id,
        f"token:{row.name}",
        row.name,
        row.role or "agent",
        row.region,
        row.office,
        None,
        token_id=row.id,
    )


@dataclass(frozen=True)
class Resolved:
    user: SessionUser
    rate_per_minute: int


async def resolve(db: Database, token: str) -> Resolved:
    """The principal behind a bearer token; 401 if unknown, revoked, expired or disabled."""
    now = utcnow()
    async with db.transaction() as session:
        row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(token)))
        if row is None:
            raise NotAuthenticated("unknown API token", reason="unknown_token")
        if row.revoked_at is not None:
            raise NotAuthenticated("this API token was revoked", reason="revoked_token")
        if row.expires_at is not None and now >= row.expires_at:
            raise NotAuthenticated("this API token has expired", reason="expired_token")
        user = await session.get(User, row.user_id) if row.user_id is not None else None
        if row.kind == "personal" and (user is None or not user.active):
            raise NotAuthenticated("the token's user is disabled", reason="disabled_user")
        if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
            row.last_used_at = now
        return Resolved(principal(row, user), row.rate_per_minute)


@dataclass
class Bucket:
    tokens: float
    at: float


@dataclass
class RateLimiter:
    """An in-process token bucket per API token: `rate` requests a minute, bursts up to
    `rate`. Per process on purpose (docs/api.md): simple, and several nodes only multiply it."""

    buckets: dict[int, Bucket] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic

    def take(self, token_id: int, rate_per_minute: int) -> None:
        now = self.clock()
        capacity = float(rate_per_minute)
        bucket = self.buckets.setdefault(token_id, Bucket(capacity, now))
        refill = (now - bucket.at) * rate_per_minute / 60.0
        bucket.tokens, bucket.at = min(capacity, bucket.tokens + refill), now
        if bucket.tokens < 1.0:
            wait = math.ceil((1.0 - bucket.tokens) * 60.0 / rate_per_minute)
            raise RateLimited(
                f"rate limit of {rate_per_minute} requests a minute reached; retry later",
                retry_after=max(1, wait),
            )
        bucket.tokens -= 1.0
