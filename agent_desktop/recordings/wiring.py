"""Composition of the recordings feature: what the recordings package needs from the rest of
the product (PBX paths, the call log, the AMI client, the WebSocket hub, ticketing), handed
to it as plain callables, plus its background workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import exists, select, update

from agent_desktop.context import AppContext
from agent_desktop.services import AMI_KEY, HUB_KEY
from asterisk_conf.paths import pbx_paths
from crm_core.events import CallLinkedToRequest, CallRecordingFinished
from cti.models import Call
from recordings.ingest import RecordingIngest
from recordings.meta import CallMeta
from recordings.models import Recording
from recordings.pause import AmiReply, RecordingPauses
from recordings.request_links import follow_call_link
from recordings.retention import RetentionPolicy, purge
from recordings.storage import Storage
from ticketing.customer_view import CLOSED_STATES
from ticketing.models import ServiceRequest

log = logging.getLogger(__name__)
RETRY_SECONDS = 120  # pending files (full disk, missed events) are tried again this often
PURGE_SECONDS = 6 * 3600


@dataclass
class RecordingsRuntime:
    ctx: AppContext
    storage: Storage
    ingest: RecordingIngest
    pauses: RecordingPauses
    spool: Path
    policy: RetentionPolicy

    async def open_requests(self, ids: set[int]) -> set[int]:
        query = select(ServiceRequest.id).where(
            ServiceRequest.id.in_(ids), ServiceRequest.state.not_in(CLOSED_STATES)
        )
        async with self.ctx.db.transaction() as session:
            return set((await session.scalars(query)).all())

    async def find_call(self, path: Path) -> CallMeta | None:
        """The call-log row of a file found in the spool (its event may have been missed)."""
        paths = pbx_paths(self.ctx.settings)
        try:
            inner = "/" + path.relative_to(paths.root).as_posix()
        except ValueError:
            return None
        async with self.ctx.db.transaction() as session:
            call = await session.scalar(select(Call).where(Call.recording_path == inner))
        if call is None or call.status != "ended":
            return None
        return CallMeta(
            source=path, server=call.server, linkedid=call.linkedid, call_id=call.id,
            customer_id=call.customer_id, agent_id=call.agent_id, queue=call.queue,
            service_request_id=call.service_request_id, direction=call.direction,
            answered_at=call.answered_at, ended_at=call.ended_at,
            talk_seconds=call.talk_seconds, from_call_log=True,
        )  # fmt: skip

    async def reconcile_request_links(self) -> int:
        """Recordings whose call belongs to a request, but they do not yet: the call was
        linked between its recording's event and the recording's row (see
        recordings/request_links.py). Returns how many were put right."""
        linked_call = (
            select(Call.service_request_id)
            .where(Call.id == Recording.call_id, Call.service_request_id.is_not(None))
            .scalar_subquery()
        )
        statement = (
            update(Recording)
            .where(Recording.service_request_id.is_(None), Recording.call_id.is_not(None))
            .where(
                exists().where(Call.id == Recording.call_id, Call.service_request_id.is_not(None))
            )
            .values(service_request_id=linked_call)
        )
        async with self.ctx.db.transaction() as session:
            result = await session.execute(statement)
        return int(getattr(result, "rowcount", 0) or 0)

    async def purge_now(self) -> dict[str, list[int]]:
        await self.reconcile_request_links()
        report = await purge(self.ctx.db, self.storage, self.policy, self.open_requests)
        return {
            "purged": report.purged,
            "kept_open_request": report.kept_open_request,
            "kept_hold": report.kept_hold,
        }


RUNTIME_KEY = web.AppKey("recordings_runtime", RecordingsRuntime)


def build_runtime(app: web.Application, ctx: AppContext) -> RecordingsRuntime:
    # AMI_KEY and HUB_KEY are read at run time only: the calls feature, which puts the AMI
    # client and the hub on the app, is set up after this one.
    settings = ctx.settings
    paths = pbx_paths(settings)

    async def ami_action(action: dict[str, str]) -> AmiReply:
        reply = await app[AMI_KEY].action(settings.pbx_instance, action)
        return AmiReply(dict(reply.headers), [dict(e.headers) for e in reply.events])

    async def notify(user_id: int, message: dict[str, Any]) -> object:
        hub = app.get(HUB_KEY)
        return await hub.send_to_user(user_id, message) if hub is not None else 0

    storage = Storage(Path(settings.recordings_dir))
    runtime = RecordingsRuntime(
        ctx=ctx,
        storage=storage,
        ingest=RecordingIngest(ctx.db, storage, parallel=ctx.settings.recordings_ingest_workers),
        pauses=RecordingPauses(
            ctx.db, ami_action, notify, settings.recordings_pause_auto_resume_seconds
        ),
        spool=Path(settings.recordings_spool_dir or paths.recordings_host),
        policy=RetentionPolicy.from_settings(settings),
    )
    ctx.bus.subscribe(CallRecordingFinished, runtime.ingest.subscriber(paths.host))

    async def close_pause(event: CallRecordingFinished) -> None:
        ended = runtime.pauses.call_ended(event.server, event.linkedid)
        if ended is not None:
            await ended

    ctx.bus.subscribe(CallRecordingFinished, close_pause)

    async def follow_link(event: CallLinkedToRequest) -> None:
        await follow_call_link(ctx.db, event)

    ctx.bus.subscribe(CallLinkedToRequest, follow_link)
    return runtime


async def _every(seconds: float, job: Any, name: str) -> None:
    while True:
        try:
            await job()
        except Exception:
            log.exception("recordings: %s failed; next try in %ss", name, seconds)
        await asyncio.sleep(seconds)


def lifecycle(runtime: RecordingsRuntime) -> Any:
    async def run(_app: web.Application) -> AsyncIterator[None]:
        runtime.ingest.start()
        server = runtime.ctx.settings.pbx_instance

        async def scan() -> None:
            # Files the call log does not know are ours only when the spool was named for us.
            orphans = bool(runtime.ctx.settings.recordings_spool_dir)
            done = await runtime.ingest.rescan(runtime.spool, server, runtime.find_call, orphans)
            retried = await runtime.ingest.retry_pending()
            await runtime.reconcile_request_links()
            if done or retried:
                log.info("recordings: spool re-scan ingested %s, retries %s", done, retried)

        # On the leader only, in a cluster (crm_core/cluster/runtime.py).
        cluster = runtime.ctx.cluster
        cluster.singleton("rec-scan", lambda: _every(RETRY_SECONDS, scan, "spool re-scan"))
        cluster.singleton(
            "rec-purge", lambda: _every(PURGE_SECONDS, runtime.purge_now, "retention purge")
        )
        yield
        await cluster.stop_singleton("rec-scan")
        await cluster.stop_singleton("rec-purge")
        with contextlib.suppress(Exception):
            await runtime.pauses.stop()
        await runtime.ingest.stop()

    return run
