"""The operations' FastAGI handlers and the callback worker, wired to the CTI bridge."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from agent_desktop.context import AppContext
from agent_desktop.services import AMI_KEY, BRIDGE_KEY
from cti.bridge import CtiBridge
from cti.callback_worker import CallbackWorker
from cti.operations_agi import OperationsHandlers
from cti.tracker import CallState

log = logging.getLogger(__name__)
WORKER_KEY = web.AppKey("callback_worker", CallbackWorker)


def _server_of(app: web.Application, default: str) -> Callable[[str], str]:
    def server_of(linkedid: str) -> str:
        bridge = app.get(BRIDGE_KEY)
        if bridge is not None:
            for server, known in bridge.tracker.calls:
                if known == linkedid:
                    return server
        return default

    return server_of


def waiting_before(bridge: CtiBridge, server: str) -> Callable[[str, float], bool]:
    """Is a caller who joined `queue` before `epoch` still waiting there (not yet answered)?"""

    def check(queue: str, epoch: float) -> bool:
        for (srv, _), call in bridge.tracker.calls.items():
            if (
                srv == server
                and call.queue == queue
                and call.state in (CallState.QUEUED, CallState.RINGING)
                and call.queued_at is not None
                and call.queued_at < epoch
            ):
                return True
        return False

    return check


def setup(app: web.Application, ctx: AppContext) -> None:
    server = ctx.settings.pbx_instance
    handlers = OperationsHandlers(
        ctx.db, _server_of(app, server), test_clock=ctx.settings.pbx_mode == "test"
    )
    ctx.providers["agi_routes"] = handlers.routes()

    async def worker(app: web.Application) -> AsyncIterator[None]:
        bridge, ami = app[BRIDGE_KEY], app[AMI_KEY]
        job = CallbackWorker(ctx.db, ami, server, waiting_before(bridge, server))
        app[WORKER_KEY] = job
        # On the AMI leader only, in a cluster: it reads the leader's queue state.
        ctx.cluster.singleton("callback-worker", job.run)
        yield
        await ctx.cluster.stop_singleton("callback-worker")
        await handlers.drain()

    app.cleanup_ctx.append(worker)
