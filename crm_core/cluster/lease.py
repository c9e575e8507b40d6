"""A lease: at most one node holds it, and another takes it over when the holder goes.

The lease is a PostgreSQL session-level advisory lock on a connection of its own. When the
holder's process dies or its host vanishes, PostgreSQL ends the session (at once for a
killed process; within the keepalive time for a vanished host, see pg.py) and the lock is
free; a follower that asks every `interval` gets it. The holder writes a heartbeat through
that same connection every `interval`; a heartbeat that fails or takes longer than
`2 × interval` means the session may be gone, and the holder stops acting at once (the
`on_lost` callback), before a successor could have started: it cannot know whether the lock
survived. Every takeover bumps the lease's epoch, which fences out the old holder's writes
still in flight (fence.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import asyncpg

import crm_core.cluster.pg as pg

log = logging.getLogger(__name__)
DEFAULT_INTERVAL = 1.0
Acquired = Callable[[int], Coroutine[Any, Any, None]]
Lost = Callable[[], Awaitable[None]]

TAKE_EPOCH = """
INSERT INTO cluster_leases (name, epoch, holder, acquired_at, heartbeat_at)
VALUES ($1, 1, $2, now(), now())
ON CONFLICT (name) DO UPDATE
   SET epoch = cluster_leases.epoch + 1, holder = $2, acquired_at = now(), heartbeat_at = now()
RETURNING epoch
"""
HEARTBEAT = """
UPDATE cluster_leases SET heartbeat_at = now()
 WHERE name = $1 AND holder = $2 AND epoch = $3 AND pg_try_advisory_lock($4)
RETURNING epoch
"""


class LeaseLost(Exception):
    pass


class Lease:
    def __init__(
        self,
        address: str,
        name: str,
        node: str,
        on_acquired: Acquired,
        on_lost: Lost,
        *,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.address = address
        self.name = name
        self.node = node
        self.on_acquired = on_acquired
        self.on_lost = on_lost
        self.interval = interval
        self.key = pg.lock_key(name)
        self.epoch: int | None = None  # set while held
        self.takeovers = 0
        self.last_error: str | None = None

    @property
    def held(self) -> bool:
        return self.epoch is not None

    async def run(self) -> None:
        """Hold the lease whenever possible, until cancelled."""
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await pg.connect(
                    self.address,
                    f"hotline {self.node} lease {self.name}",
                    idle_timeout=3 * self.interval,
                )
                await self._contend(conn)
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, TimeoutError, LeaseLost) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("lease %s: %s", self.name, self.last_error)
            except asyncpg.InterfaceError as exc:
                self.last_error = f"connection: {exc}"
                log.warning("lease %s: %s", self.name, self.last_error)
            finally:
                if conn is not None:
                    # abort(): a polite close would wait on a server that may be gone.
                    conn.terminate()
            await asyncio.sleep(self.interval)

    async def _contend(self, conn: asyncpg.Connection) -> None:
        # Asked again every interval: PostgreSQL has no "tell me when it is free" for a
        # lock that must not block this connection's heartbeat-free wait.
        while not await self._ask(conn, "SELECT pg_try_advisory_lock($1)", self.key):  # noqa: ASYNC110
            await asyncio.sleep(self.interval)
        epoch = int(str(await self._ask(conn, TAKE_EPOCH, self.name, self.node)))
        self.epoch, self.takeovers = epoch, self.takeovers + 1
        log.warning("lease %s: taken by %s (epoch %d)", self.name, self.node, epoch)
        # What the lease leads starts beside the heartbeat: starting it must never leave the
        # session idle long enough for the server to end it (pg.connect's idle_timeout).
        starting = asyncio.create_task(self.on_acquired(epoch), name=f"lead-{self.name}")
        try:
            while True:
                await asyncio.sleep(self.interval)
                if starting.done() and starting.exception() is not None:
                    raise LeaseLost(f"could not start leading: {starting.exception()!r}")
                # pg_try_advisory_lock again (it nests, and is released with the session)
                # proves the lock is still this session's, not only that the row is ours.
                if await self._ask(conn, HEARTBEAT, self.name, self.node, epoch, self.key) is None:
                    raise LeaseLost(f"epoch {epoch} is no longer ours")
        finally:
            self.epoch = None
            log.warning("lease %s: %s stops holding it (epoch %d)", self.name, self.node, epoch)
            if not starting.done():
                starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self.on_lost()

    async def _ask(self, conn: asyncpg.Connection, query: str, *args: object) -> object:
        async with asyncio.timeout(2 * self.interval):
            return await conn.fetchval(query, *args)
