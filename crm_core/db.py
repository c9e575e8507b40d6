"""Database engine and transactions: SQLite (WAL, foreign keys) by default, PostgreSQL by URL."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from crm_core.settings import Settings


def sqlite_path(database_url: str) -> Path | None:
    """The file behind a sqlite URL, or None for PostgreSQL and in-memory databases."""
    prefix = "sqlite+aiosqlite:///"
    if not database_url.startswith(prefix):
        return None
    rest = database_url[len(prefix) :].split("?", 1)[0]
    return None if rest in ("", ":memory:") else Path(rest)


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the server read while a backup or a writer runs; foreign keys are off by
    # default in SQLite and we rely on them for integrity.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def create_engine(settings: Settings, **kwargs: Any) -> AsyncEngine:
    path = sqlite_path(settings.database_url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    if not settings.is_sqlite:
        # After a PostgreSQL restart (or a failover) every pooled connection is dead; a
        # ping at checkout replaces one quietly instead of failing the request that got it.
        kwargs.setdefault("pool_pre_ping", True)
    engine = create_async_engine(settings.database_url, **kwargs)
    if settings.is_sqlite:
        event.listen(engine.sync_engine, "connect", _tune_sqlite)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@dataclass
class Database:
    """The engine plus a session factory; every service call is one `transaction()`."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    @classmethod
    def open(cls, settings: Settings, **engine_kwargs: Any) -> Database:
        engine = create_engine(settings, **engine_kwargs)
        return cls(settings=settings, engine=engine, sessions=session_factory(engine))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    async def close(self) -> None:
        await self.engine.dispose()


def is_integrity_error(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", None)
    return (
        isinstance(orig, sqlite3.IntegrityError)
        or "IntegrityError" in type(orig).__name__
        or ("UniqueViolation" in type(orig).__name__)
    )
