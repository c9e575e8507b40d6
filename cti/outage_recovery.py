"""Calls that began and ended while the AMI link was down, recovered from Asterisk's own call
records (CDR, written by cdr_custom into calls.csv; asterisk_conf/templates/cdr_custom.conf.j2).

AMI has no replay and the resync snapshot shows only live calls, so without this such a call
would leave no trace in the call log. The records give the caller, when it began, whether an
agent answered (and who, from the answered leg's channel) and when it ended. What they cannot
say is logged as the outcome "unknown", never guessed.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cti.call_events import Outcome

log = logging.getLogger(__name__)
CARRIER_PREFIX = "PJSIP/carrier-"
TAIL_BYTES = 4 << 20  # an outage's records are at the end of the file: read only its tail
COLUMNS = (
    "linkedid", "uniqueid", "src", "channel", "dstchannel", "lastapp",
    "start", "answer", "end", "billsec", "disposition",
)  # fmt: skip


@dataclass(frozen=True)
class CallRecord:
    """One CDR line: one leg pair of a call (caller and one dialled channel)."""

    linkedid: str
    uniqueid: str
    src: str
    channel: str
    dstchannel: str
    lastapp: str
    start: float
    answer: float | None
    end: float
    billsec: int
    disposition: str


@dataclass(frozen=True)
class RecoveredCall:
    linkedid: str
    caller: str
    started_at: float
    ended_at: float
    agent_interface: str | None  # who answered, when an agent did
    answered_at: float | None
    outcome: Outcome


def _epoch(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value > 0 else None


def parse_records(lines: Iterable[str]) -> list[CallRecord]:
    """The well-formed records among `lines`; a torn or foreign line is skipped."""
    records = []
    for row in csv.reader(lines):
        if len(row) != len(COLUMNS):
            continue
        fields = dict(zip(COLUMNS, row, strict=True))
        start, end = _epoch(fields["start"]), _epoch(fields["end"])
        if not fields["linkedid"] or start is None or end is None:
            continue
        try:
            billsec = int(fields["billsec"] or 0)
        except ValueError:
            continue
        records.append(
            CallRecord(
                fields["linkedid"],
                fields["uniqueid"],
                fields["src"],
                fields["channel"],
                fields["dstchannel"],
                fields["lastapp"],
                start,
                _epoch(fields["answer"]),
                end,
                billsec,
                fields["disposition"],
            )
        )
    return records


def read_records(path: Path, since: float) -> list[CallRecord]:
    """Every record of the calls with a leg that ended at or after `since` (epoch s)."""
    try:
        with path.open("rb") as raw:
            size = raw.seek(0, os.SEEK_END)
            raw.seek(max(0, size - TAIL_BYTES))
            text = raw.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    except OSError as exc:
        log.warning("call records %s unreadable: %s", path, exc)
        return []
    lines = text.splitlines()
    if size > TAIL_BYTES:
        lines = lines[1:]  # the first line of a tail is a torn one
    records = parse_records(lines)
    recent = {r.linkedid for r in records if r.end >= since}
    return [r for r in records if r.linkedid in recent]


def _agent_leg(records: list[CallRecord]) -> CallRecord | None:
    """The leg an agent's phone answered (a queue's or a sticky Dial's)."""
    answered = [
        r
        for r in records
        if r.disposition == "ANSWERED"
        and r.dstchannel
        and not r.dstchannel.startswith(CARRIER_PREFIX)
        and r.lastapp in ("Queue", "Dial")
        and r.answer is not None
    ]
    return min(answered, key=lambda r: r.answer or 0.0, default=None)


def recovered_calls(records: Iterable[CallRecord]) -> list[RecoveredCall]:
    """One call per inbound Linkedid (its own leg on the carrier trunk)."""
    by_linkedid: dict[str, list[CallRecord]] = {}
    for record in records:
        by_linkedid.setdefault(record.linkedid, []).append(record)
    calls = []
    for linkedid, legs in by_linkedid.items():
        own = [r for r in legs if r.uniqueid == linkedid]
        if not own or not own[0].channel.startswith(CARRIER_PREFIX):
            continue  # outbound: its call-log row belongs to click-to-dial
        agent = _agent_leg(legs)
        if agent is not None:
            outcome = Outcome.ANSWERED
        elif any(r.lastapp in ("Queue", "Dial") for r in legs):
            outcome = Outcome.ABANDONED  # reached the queue or the owner; nobody answered
        else:
            outcome = Outcome.UNKNOWN
        calls.append(
            RecoveredCall(
                linkedid=linkedid,
                caller=own[0].src,
                started_at=min(r.start for r in legs),
                ended_at=max(r.end for r in legs),
                agent_interface=agent.dstchannel.rsplit("-", 1)[0] if agent else None,
                answered_at=agent.answer if agent else None,
                outcome=outcome,
            )
        )
    return calls
