"""The call log's statements on the `calls` table, built once as Core with bind parameters.

Core, not ORM objects: the call log's CPU competes with the serving process that sends pops
(it runs in the CTI database worker, cti/db_worker.py), and the ORM's unit of work (identity
map, attribute history, flush) cost several times the SQL it sent. Parameters are prefixed
(`k_` for the call's key, `v_` for values) so they never collide with the column names an
UPDATE sets.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, and_, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert, Update

from cti.models import Call

CALLS: Table = Call.__table__  # type: ignore[assignment]
C = CALLS.c
BY_KEY = and_(C.server == bindparam("k_server"), C.linkedid == bindparam("k_linkedid"))
BY_ID = C.id == bindparam("k_id")
# What CallStarted writes; the customer found by number never replaces one already set
# (click-to-dial writes the customer the agent dialled).
STARTED_COLUMNS = ("direction", "number", "number_e164", "did", "entered_at")


def _set(*columns: str) -> dict[str, Any]:
    return {name: bindparam(f"v_{name}") for name in columns}


def _update(where: Any, *columns: str) -> Update:
    return update(CALLS).where(where).values(_set(*columns))


SET_IDENTIFIED = _update(BY_KEY, "customer_id", "business_key")
SET_QUEUED = _update(BY_KEY, "queue", "queued_at")
SET_RECORDING = _update(BY_KEY, "recording_path")
SET_FIRST_RING = _update(and_(BY_KEY, C.ringing_at.is_(None)), "ringing_at", "queue")
SET_ANSWERED = _update(BY_ID, "answered_at", "agent_interface", "agent_id", "queue", "wait_seconds")
# An answered call's talk time ends; a call nobody answered waited until it ended.
END_TALKED = (
    update(CALLS).where(BY_ID).values(status="ended", **_set("ended_at", "outcome", "talk_seconds"))
)
END_UNANSWERED = (
    update(CALLS).where(BY_ID).values(status="ended", **_set("ended_at", "outcome", "wait_seconds"))
)
# A row written before the PBX knew the call: by (server, Linkedid) after a replay, or by
# the click-to-dial request that made it, which this re-keys to the real Linkedid.
_STARTED_VALUES = {
    **_set("server", "linkedid", *STARTED_COLUMNS),
    "customer_id": func.coalesce(C.customer_id, bindparam("v_customer_id")),
}
RESTART_BY_KEY = update(CALLS).where(BY_KEY).values(_STARTED_VALUES)
REKEY_BY_REQUEST = (
    update(CALLS).where(C.request_id == bindparam("k_request_id")).values(_STARTED_VALUES)
)
INSERT_STARTED = CALLS.insert().values(
    {
        **_set("server", "linkedid", "request_id", *STARTED_COLUMNS, "customer_id"),
        "status": "in_progress",
    }
)
# What CallAnswered and CallEnded need to know first: both depend on the row's times, and a
# second answer or end must change nothing.
NEEDED_FOR_TIMES = select(
    C.id,
    C.server,
    C.linkedid,
    C.direction,
    C.customer_id,
    C.agent_id,
    C.queue,
    C.recording_path,
    C.service_request_id,
    C.entered_at,
    C.queued_at,
    C.answered_at,
    C.talk_seconds,
    C.status,
).where(BY_KEY)


def upsert_started(dialect_name: str) -> Insert:
    """CallStarted for a call without a click-to-dial request: one statement, new or
    replayed. Both SQLite (3.24+) and PostgreSQL have ON CONFLICT on the call's key."""
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    statement = insert(CALLS).values(
        {**_set("server", "linkedid", *STARTED_COLUMNS, "customer_id"), "status": "in_progress"}
    )
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[C.server, C.linkedid],
        set_={
            **{name: excluded[name] for name in STARTED_COLUMNS},
            "customer_id": func.coalesce(C.customer_id, excluded.customer_id),
        },
    )
