"""Retention: each queue keeps its recordings a configured number of days; a purge deletes
the files, marks the rows purged and logs each one. A recording under an open service
request or a dispute hold is kept whatever its age."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from crm_core.db import Database
from crm_core.settings import Settings
from recordings.models import Recording, RecordingState
from recordings.storage import Storage

log = logging.getLogger(__name__)
# Which of these service request ids are still open (the composition root asks ticketing).
OpenRequests = Callable[[set[int]], Awaitable[set[int]]]


@dataclass(frozen=True)
class RetentionPolicy:
    default_days: int  # 0: keep for ever
    by_queue: dict[str, int]

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        by_queue = {}
        for item in settings.recordings_retention_by_queue.split(","):
            queue, _, days = item.strip().partition("=")
            if queue.strip():
                by_queue[queue.strip()] = int(days)
        return cls(settings.recordings_retention_days, by_queue)

    def days_for(self, queue: str | None) -> int:
        return self.by_queue.get(queue or "", self.default_days)


@dataclass(frozen=True)
class PurgeReport:
    purged: list[int]
    kept_open_request: list[int]
    kept_hold: list[int]


async def purge(
    db: Database,
    storage: Storage,
    policy: RetentionPolicy,
    open_requests: OpenRequests,
    now: datetime | None = None,
) -> PurgeReport:
    now = now or datetime.now(UTC)
    async with db.transaction() as session:
        rows = (
            await session.scalars(
                select(Recording).where(
                    Recording.state.in_(
                        (RecordingState.COMPLETE.value, RecordingState.QUARANTINED.value)
                    )
                )
            )
        ).all()
    due = [r for r in rows if _expired(r, policy, now)]
    held = [r.id for r in due if r.hold_reason]
    requested = {r.service_request_id for r in due if r.service_request_id and not r.hold_reason}
    still_open = await open_requests(requested) if requested else set()
    kept_open = [r.id for r in due if r.service_request_id in still_open and not r.hold_reason]
    victims = [r for r in due if not r.hold_reason and r.service_request_id not in still_open]
    purged = []
    for row in victims:
        # Mark first, re-checking the hold in the same transaction, then delete the files:
        # a hold placed a moment ago wins, and a crash leaves only unreferenced files.
        async with db.transaction() as session:
            fresh = await session.get(Recording, row.id)
            if fresh is None or fresh.hold_reason:
                continue
            fresh.state, fresh.purged_at, fresh.peaks = RecordingState.PURGED.value, now, None
        await asyncio.to_thread(_delete_files, storage, row)
        purged.append(row.id)
        log.info(
            "recording purged id=%s call=%s queue=%s ended=%s file=%s",
            row.id, row.call_id, row.queue, row.ended_at, row.wav_path,
        )  # fmt: skip
    return PurgeReport(purged, kept_open, held)


def _expired(row: Recording, policy: RetentionPolicy, now: datetime) -> bool:
    days = policy.days_for(row.queue)
    ended = row.ended_at or row.created_at
    return days > 0 and ended < now - timedelta(days=days)


def _delete_files(storage: Storage, row: Recording) -> None:
    storage.delete(row.wav_path)
    storage.delete(row.opus_path)
