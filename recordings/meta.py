"""What we know about the call behind a recording file: from the CallRecordingFinished event,
from the call log (asked through the composition root), or only from the file name."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from crm_core.events import CallRecordingFinished

# The dialplan names files <UTC stamp>-<direction>-<Uniqueid>.wav (extensions.conf.j2).
_NAME = re.compile(r"^(\d{8}-\d{6})-([a-z]+)-([0-9.]+)\.wav$")

HostPath = Callable[[str], Path]


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class CallMeta:
    source: Path  # the file on this host
    server: str
    linkedid: str | None = None
    call_id: int | None = None
    customer_id: int | None = None
    agent_id: int | None = None
    queue: str | None = None
    service_request_id: int | None = None
    direction: str | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    talk_seconds: float | None = None
    from_call_log: bool = False  # False: only the file is known (a spool re-scan orphan)

    @property
    def key(self) -> str:
        return str(self.source)

    @classmethod
    def from_event(cls, event: CallRecordingFinished, host_path: HostPath) -> CallMeta:
        return cls(
            source=host_path(event.path),
            server=event.server,
            linkedid=event.linkedid,
            call_id=event.call_id,
            customer_id=event.customer_id,
            agent_id=event.agent_id,
            queue=event.queue,
            service_request_id=event.service_request_id,
            direction=event.direction,
            answered_at=_parse_time(event.answered_at),
            ended_at=_parse_time(event.ended_at),
            talk_seconds=event.talk_seconds,
            from_call_log=True,
        )

    @classmethod
    def from_file(cls, path: Path, server: str) -> CallMeta:
        match = _NAME.match(path.name)
        if match is None:
            ended = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            return cls(source=path, server=server, ended_at=ended)
        started = datetime.strptime(match[1], "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
        ended = max(started, datetime.fromtimestamp(path.stat().st_mtime, UTC))
        return cls(
            source=path,
            server=server,
            linkedid=match[3],
            direction={"in": "inbound", "out": "outbound"}.get(match[2], match[2]),
            ended_at=ended,
        )
