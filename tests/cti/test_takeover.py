"""A cluster's new AMI leader closes the calls that ended while no node led (issue #19):
from the PBX's call records when it can read them, else as `unknown` with the reason."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from crm_core.db import Database
from cti.call_events import CallAnswered, CallEnded, Outcome
from cti.models import Call
from cti.takeover import UNKNOWN_REASON, close_orphans
from cti.tracker import CallTracker

RECORDS = Path(__file__).parents[1] / "fixtures" / "cdr" / "calls.csv"


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


async def test_open_calls_the_pbx_no_longer_has_are_closed_from_the_records_or_as_unknown(
    db: Database,
) -> None:
    async with db.transaction() as session:
        for linkedid, status in (
            ("1796400000.0", "in_progress"),  # answered by 1001: in the call records
            ("1796400500.1", "in_progress"),  # not in the records
            ("1796400600.2", "in_progress"),  # still live on the PBX
            ("1796400700.3", "ended"),  # ended and logged: left alone
        ):
            session.add(
                Call(
                    server="pbx",
                    linkedid=linkedid,
                    direction="inbound",
                    number="13905581234",
                    entered_at=_at(float(linkedid.split(".")[0])),
                    status=status,
                )
            )
    events: list[object] = []
    closed = await close_orphans(
        db, CallTracker(events.append), "pbx", {"1796400600.2"}, RECORDS, None
    )
    assert sorted(closed) == ["1796400000.0", "1796400500.1"]
    ended = {e.linkedid: e for e in events if isinstance(e, CallEnded)}
    assert set(ended) == {"1796400000.0", "1796400500.1"}
    from_records = ended["1796400000.0"]
    assert (from_records.outcome, from_records.at) == (Outcome.ANSWERED, 1796400050.25)
    (answered,) = [e for e in events if isinstance(e, CallAnswered)]
    assert (answered.interface, answered.at) == ("PJSIP/1001", 1796400031.5)
    unknown = ended["1796400500.1"]
    assert (unknown.outcome, unknown.reason) == (Outcome.UNKNOWN, UNKNOWN_REASON)


async def test_without_call_records_every_orphan_is_closed_as_unknown(db: Database) -> None:
    async with db.transaction() as session:
        session.add(Call(server="pbx", linkedid="9.1", direction="inbound", number="1"))
        session.add(Call(server="other", linkedid="9.2", direction="inbound", number="1"))
    events: list[object] = []
    assert await close_orphans(db, CallTracker(events.append), "pbx", set(), None, None) == ["9.1"]
    assert [e.outcome for e in events if isinstance(e, CallEnded)] == [Outcome.UNKNOWN]
