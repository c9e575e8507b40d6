"""Calls that began and ended while the AMI link was down, read from the PBX's call records
(the cdr_custom lines of asterisk_conf/templates/cdr_custom.conf.j2)."""

from __future__ import annotations

from pathlib import Path

from cti.call_events import Outcome
from cti.outage_recovery import TAIL_BYTES, parse_records, read_records, recovered_calls

# A queue call answered by 1001 after 1002 rang out, then a caller who gave up in the queue,
# then an outbound click-to-dial call (its row belongs to click-to-dial: left alone).
# The columns are those of cdr_custom.conf.j2.
RECORDS = (Path(__file__).parents[1] / "fixtures" / "cdr" / "calls.csv").read_text()


def test_answered_abandoned_and_outbound_calls_from_the_records() -> None:
    calls = {c.linkedid: c for c in recovered_calls(parse_records(RECORDS.splitlines()))}
    assert set(calls) == {"1796400000.0", "1796400100.3"}
    answered = calls["1796400000.0"]
    assert (answered.outcome, answered.agent_interface, answered.caller) == (
        Outcome.ANSWERED,
        "PJSIP/1001",
        "13905581234",
    )
    assert answered.answered_at == 1796400031.5 and answered.ended_at == 1796400050.25
    gave_up = calls["1796400100.3"]
    assert (gave_up.outcome, gave_up.agent_interface) == (Outcome.ABANDONED, None)


def test_torn_and_foreign_lines_are_skipped() -> None:
    lines = [
        '"1796400000.0","1796400000.0","139"',  # torn
        "not,a,call,record",
        '"x","x","1","PJSIP/carrier-1","","Queue",nan?,,1,0,"NO ANSWER"',
        *RECORDS.splitlines()[2:3],
    ]
    assert [r.linkedid for r in parse_records(lines)] == ["1796400100.3"]


def test_only_the_records_since_the_outage_and_only_the_tail(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    assert read_records(path, 0) == []  # no file yet: nothing, no error
    old = '"1.0","1.0","1","PJSIP/carrier-x","","Queue",1.0,,2.0,0,"NO ANSWER"\n'
    path.write_text(old * (TAIL_BYTES // len(old) + 10) + RECORDS)
    # 1796400000.0's first leg ended before `since`, its second after: both legs come back.
    found = read_records(path, since=1796400040.0)
    assert sorted(r.linkedid for r in found) == [
        "1796400000.0",
        "1796400000.0",
        "1796400100.3",
        "1796400200.5",
    ]
