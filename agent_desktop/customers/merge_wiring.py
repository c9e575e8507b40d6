"""Who follows a customer merge: the call log (cti), service requests (ticketing) and
recordings move to the surviving customer, and back on unmerge (issue #17 §2).

crm_core may not import those packages, so they subscribe to CustomersMerged and
CustomersUnmerged on the bus; this composition root wires them (the server and the CLI)."""

from __future__ import annotations

from crm_core.db import Database
from crm_core.events import EventBus
from cti import customer_merge as cti_merge
from recordings import customer_merge as recordings_merge
from ticketing import customer_merge as ticketing_merge


def follow_merges(bus: EventBus, db: Database) -> None:
    for follower in (cti_merge, ticketing_merge, recordings_merge):
        follower.subscribe(bus, db)


def merge_bus(db: Database) -> EventBus:
    """A bus with the followers, for merges made outside the server (the CLI)."""
    bus = EventBus()
    follow_merges(bus, db)
    return bus
