"""A customer merge moves this package's rows too: recordings follow the survivor (issue #17).

Subscribed by the composition root (agent_desktop/customers/merge_wiring.py). The moved ids
are kept by crm_core/merge_follow.py, so undoing the merge puts back exactly those rows.
"""

from __future__ import annotations

from crm_core.db import Database
from crm_core.events import CustomersMerged, CustomersUnmerged, EventBus
from crm_core.merge_follow import follow_merge, follow_unmerge
from recordings.models import Recording

KEY = "recordings"


def subscribe(bus: EventBus, db: Database) -> None:
    async def merged(event: CustomersMerged) -> None:
        await follow_merge(db, event, KEY, Recording)

    async def unmerged(event: CustomersUnmerged) -> None:
        await follow_unmerge(db, event, KEY, Recording)

    bus.subscribe(CustomersMerged, merged)
    bus.subscribe(CustomersUnmerged, unmerged)
