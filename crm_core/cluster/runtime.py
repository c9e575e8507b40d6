"""What a node knows about the cluster, as features use it.

`SingleNode` (SQLite, or PostgreSQL without a node name) is the product as it always was:
this process leads everything and there is nobody to talk to. `ClusterNode` (PostgreSQL
and `--node-name`) runs the leases, the fan-out and the heartbeat. Features register at
set-up time, before start:

- `lease(name, on_acquired, on_lost)`: one AMI leader per Asterisk server (`ami:<server>`);
- `singleton(name, factory)`: a background worker that runs on exactly one node at a time,
  the leader (the holder of the main Asterisk server's lease, `leader_lease`), and is
  started on the next leader when its holder goes. Its jobs are rows in the database,
  claimed the way each worker documents, so a job a dead leader left half-done is
  finished by the next one and none is done twice;
- `on(kind, handler)` / `publish(kind, body)`: messages to the other nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import crm_core.cluster.pg as pg
from crm_core.cluster.fanout import Fanout, Handler
from crm_core.cluster.lease import Acquired, Lease, Lost
from crm_core.cluster.nodes import NodeRegistry
from crm_core.settings import Settings

log = logging.getLogger(__name__)
Factory = Callable[[], Coroutine[Any, Any, None]]


class SingleNode:
    """One process, no cluster: it holds every lease from the start."""

    clustered = False

    def __init__(self, name: str = "local") -> None:
        self.node = name
        self.leader_lease = ""
        self._singletons: dict[str, Factory] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self.users: Callable[[], list[int]] = list

    def holds(self, _lease: str) -> bool:
        return True

    def leases_held(self) -> list[str]:
        return []

    def lease(self, _name: str, _on_acquired: Acquired, _on_lost: Lost) -> None:
        """One node leads from the start; the caller started what it leads already."""

    def singleton(self, name: str, factory: Factory) -> None:
        # At once, as before there were clusters (a feature starts it in its start-up).
        self._singletons[name] = factory
        self._running[name] = asyncio.create_task(factory(), name=name)

    async def stop_singleton(self, name: str) -> None:
        """Stop a worker for good (its feature is shutting down)."""
        self._singletons.pop(name, None)
        task = self._running.pop(name, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def on(self, _kind: str, _handler: Handler) -> None:
        """Nobody else sends."""

    def publish(self, _kind: str, _body: Any) -> None:
        """Nobody else listens."""

    def presence(self) -> dict[int, list[str]]:
        return {user_id: [self.node] for user_id in self.users()}

    async def start(self) -> None:
        return None

    async def start_leases(self) -> None:
        return None

    async def stop(self) -> None:
        await _cancel_all(self._running)


class ClusterNode:
    clustered = True

    def __init__(self, settings: Settings, name: str, url: str) -> None:
        self.node = name
        self.leader_lease = f"ami:{settings.pbx_instance}"
        self.address = pg.dsn(settings)
        self.fanout = Fanout(self.address, name)
        self.users: Callable[[], list[int]] = list
        self.registry = NodeRegistry(
            self.address, name, url, self.leases_held, lambda: self.users()
        )
        self.leases: dict[str, Lease] = {}
        self._singletons: dict[str, Factory] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def leases_held(self) -> list[str]:
        return [name for name, lease in self.leases.items() if lease.held]

    def holds(self, lease: str) -> bool:
        held = self.leases.get(lease)
        return held is not None and held.held

    def lease(self, name: str, on_acquired: Acquired, on_lost: Lost) -> None:
        if name in self.leases:
            raise ValueError(f"lease {name!r} is registered twice")
        if name == self.leader_lease:
            on_acquired, on_lost = self._with_singletons(on_acquired, on_lost)
        self.leases[name] = Lease(self.address, name, self.node, on_acquired, on_lost)

    def _with_singletons(self, on_acquired: Acquired, on_lost: Lost) -> tuple[Acquired, Lost]:
        """The leader's workers start after what the lease leads has started, and stop
        before it stops."""

        async def acquired(epoch: int) -> None:
            await on_acquired(epoch)
            await self._start_singletons()

        async def lost() -> None:
            try:
                await self._stop_singletons()
            finally:
                await on_lost()

        return acquired, lost

    def singleton(self, name: str, factory: Factory) -> None:
        self._singletons[name] = factory
        if self.holds(self.leader_lease):
            self._running[name] = asyncio.create_task(factory(), name=name)

    async def stop_singleton(self, name: str) -> None:
        """Stop a worker for good (its feature is shutting down)."""
        self._singletons.pop(name, None)
        task = self._running.pop(name, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def on(self, kind: str, handler: Handler) -> None:
        self.fanout.handlers[kind] = handler

    def publish(self, kind: str, body: Any) -> None:
        self.fanout.publish(kind, body)

    def presence(self) -> dict[int, list[str]]:
        merged = {user_id: list(nodes) for user_id, nodes in self.registry.presence.items()}
        for user_id in self.users():  # this node's own, without waiting for a heartbeat
            nodes = merged.setdefault(user_id, [])
            if self.node not in nodes:
                nodes.append(self.node)
        return merged

    async def start(self) -> None:
        """The fan-out and the heartbeat; leases wait for `start_leases` (every feature's
        start-up must be done before a lease's callbacks may run)."""
        self._spawn(self.fanout.run(), "cluster-fanout")
        self._spawn(self.registry.run(), "cluster-heartbeat")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await self.fanout.listening.wait()

    async def start_leases(self) -> None:
        for lease in self.leases.values():
            self._spawn(lease.run(), f"lease-{lease.name}")

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(coroutine, name=name))

    async def _start_singletons(self) -> None:
        for name, factory in self._singletons.items():
            log.warning("cluster: %s runs %s", self.node, name)
            self._running[name] = asyncio.create_task(factory(), name=name)

    async def _stop_singletons(self) -> None:
        await _cancel_all(self._running)

    async def stop(self) -> None:
        # Leases first (their on_lost stops what they lead), then the rest.
        tasks, self._tasks = self._tasks, []
        for task in reversed(tasks):
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await _cancel_all(self._running)


async def _cancel_all(running: dict[str, asyncio.Task[None]]) -> None:
    tasks = list(running.values())
    running.clear()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


Cluster = SingleNode | ClusterNode


def cluster_for(settings: Settings, url: str) -> Cluster:
    """A node of a cluster when a node name is set (PostgreSQL only), otherwise one node."""
    name = settings.node_name.strip()
    if not name:
        return SingleNode()
    if settings.is_sqlite:
        raise ValueError(
            f"node_name is {name!r} but the database is SQLite: several nodes need one "
            "PostgreSQL (DATABASE_URL=postgresql+asyncpg://…), see docs/deploy.md"
        )
    return ClusterNode(settings, name, url)
