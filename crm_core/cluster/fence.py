"""Fencing: a writer of call state proves, inside its own transaction, that the epochs it
was given are still the current ones.

The old leader of an Asterisk server may still have call-state writes in flight when it
loses its lease (a cut database link heals, a paused process wakes up). Each write batch
first reads its leases' rows `FOR SHARE`: a successor's epoch bump (lease.py) waits for the
batch to commit, and every batch after the bump sees the new epoch and is refused whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from crm_core.errors import HotlineError

CHECK = text("SELECT name, epoch FROM cluster_leases WHERE name = ANY(:names) FOR SHARE")


class FencedOut(HotlineError):
    status = 409
    error_id = "fenced_out"


LOST = -1  # the epoch of a lease this node held and lost: every write under it is refused


class Fence:
    """The epochs this process writes under, by lease name; empty writes unfenced (one
    node, SQLite)."""

    def __init__(self) -> None:
        self.epochs: dict[str, int] = {}

    def set(self, epochs: Mapping[str, int]) -> None:
        self.epochs = dict(epochs)

    async def check(self, conn: AsyncConnection, names: Iterable[str] | None = None) -> None:
        """Raise `FencedOut` unless every lease in `names` (default: every lease still
        held) has the epoch this process was given. A lease never given passes."""
        if not self.epochs:
            return
        wanted = (
            {n for n, e in self.epochs.items() if e != LOST}
            if names is None
            else {n for n in names if n in self.epochs}
        )
        if not wanted:
            return
        if any(self.epochs[n] == LOST for n in wanted):
            raise FencedOut("this node no longer leads " + ", ".join(sorted(wanted)))
        names = sorted(wanted)
        rows = (await conn.execute(CHECK, {"names": names})).all()
        current = {str(name): int(epoch) for name, epoch in rows}
        stale = {n: self.epochs[n] for n in names if current.get(n) != self.epochs[n]}
        if stale:
            raise FencedOut(
                "this node no longer leads "
                + ", ".join(f"{n} (epoch {e}, now {current.get(n)})" for n, e in stale.items())
            )
