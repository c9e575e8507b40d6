"""The composition root: builds the application context, sets up every feature in order,
and runs the server (`hotline serve`). Features live in their own packages (auth/, calls/,
customers/, tickets/, recordings/, wallboard/, sms/) and never import each other; see
docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from sqlalchemy import text

from agent_desktop import (
    admin,
    apidocs,  # OpenAPI description (issue #21 §3)
    auth,
    calls,
    customers,
    field_mobile,  # the technician's mobile page (issue #21 §2)
    imports,  # customer-data import (issue #17 §3)
    operations,
    recordings,
    reports_calls,  # call and agent KPIs (issue #18 §5)
    sms,
    supervise,
    tickets,
    wallboard,
    webhooks,  # outbound webhooks (issue #21 §3)
)
from agent_desktop.common import pages
from agent_desktop.context import CONTEXT_KEY, DB_KEY, AppContext, Feature
from crm_core.cluster.runtime import Cluster, SingleNode, cluster_for
from crm_core.db import Database
from crm_core.errors import HotlineError
from crm_core.events import EventBus
from crm_core.settings import Settings

log = logging.getLogger(__name__)
SWITCH_INTERVAL = 0.0002  # seconds; see serve()
HEALTH_TIMEOUT = 2.0  # seconds; a load balancer's probe gives up soon after
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def features() -> list[Feature]:
    """Every feature of the product, in the order they are set up. The one wiring point.

    The order is the top navigation's order (each feature adds its links as it is set up).
    The page framework comes first: its HTML error pages wrap the authentication checks.
    The wallboard comes after calls: it reads the CTI bridge calls puts on the app."""
    return [
        pages.setup,
        recordings.setup,
        operations.setup,  # before calls: its FastAGI handlers are a provider calls uses
        calls.setup,
        customers.setup,
        auth.setup,
        sms.setup,
        tickets.setup,
        field_mobile.setup,  # /m/<signed link>, field photos (issue #21 §2)
        reports_calls.setup,  # call and agent KPIs (issue #18 §5)
        wallboard.setup,
        supervise.setup,  # listen / whisper / barge from the wallboard (issue #18 §4)
        admin.setup,
        imports.setup,  # customer-data import (issue #17 §3)
        apidocs.setup,  # /api/openapi.json (issue #21 §3)
        webhooks.setup,  # outbound webhooks, /admin/webhooks (issue #21 §3)
    ]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The one place where domain errors become HTTP replies."""
    try:
        return await handler(request)
    except HotlineError as exc:
        retry = exc.details.get("retry_after")
        headers = {"Retry-After": str(retry)} if retry is not None else None
        return web.json_response(exc.to_dict(), status=exc.status, headers=headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response(
            {"error_id": f"http_{exc.status}", "message": exc.reason}, status=exc.status
        )


async def health(request: web.Request) -> web.Response:
    # Unauthenticated on purpose: load balancers probe it. It reveals up/down and this
    # node's role (leader/follower), nothing about calls or people.
    db, cluster = request.app[DB_KEY], request.app[CONTEXT_KEY].cluster
    role = {
        "node": cluster.node,
        "role": "leader" if cluster.holds(cluster.leader_lease) else "follower",
        "leases": cluster_leases(cluster),
    }
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT), db.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        log.warning("health check: database unreachable: %s", type(exc).__name__)
        return web.json_response({"status": "down", "database": "unreachable", **role}, status=503)
    return web.json_response({"status": "ok", "database": "ok", **role})


def cluster_leases(cluster: Cluster) -> list[str]:
    return sorted(cluster.leases_held())


def _cluster_lifecycle(
    cluster: Cluster,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await cluster.start()
        yield
        await cluster.stop()

    return lifecycle


async def landing(_request: web.Request) -> web.Response:
    # The desktop is the home page; the auth middleware sends a visitor to /login first.
    raise web.HTTPFound("/desktop")


def build_app(
    db: Database, bus: EventBus | None = None, cluster: Cluster | None = None
) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=1024**2)
    context = AppContext(db.settings, db, bus or EventBus(), cluster=cluster or SingleNode())
    app[DB_KEY] = db
    app[CONTEXT_KEY] = context
    app.router.add_get("/healthz", health)
    app.router.add_get("/", landing)
    app.cleanup_ctx.append(_cluster_lifecycle(context.cluster))  # first up, last down
    for feature in features():
        feature(app, context)

    async def start_leases(_app: web.Application) -> None:
        # After every feature started: a lease's callbacks use what they set up.
        await context.cluster.start_leases()

    async def stop_cluster(_app: web.Application) -> None:
        # Before the features stop: what the leases lead stops first, and the other
        # nodes take over while this one finishes its requests.
        await context.cluster.stop()

    app.on_startup.append(start_leases)
    app.on_shutdown.insert(0, stop_cluster)

    async def close_db(_app: web.Application) -> None:
        await db.close()

    app.on_cleanup.append(close_db)
    return app


async def freeze_startup_heap(_app: web.Application) -> None:
    """Move everything alive after start-up out of the collector's sight.

    Why: the server holds ~300k long-lived objects (modules, SQLAlchemy metadata, templates)
    that never become garbage, and each full collection walked them all: 50-110 ms with the
    event loop stopped, measured at 50 calls/s, and a pop that arrived then waited that long.
    Frozen, a full collection walks only what was made since. Only for `serve`: a test suite
    building many apps would keep every frozen one's cycles for good."""
    gc.collect()
    gc.freeze()


def use_serving_switch_interval() -> None:
    """How long a thread that wants the GIL waits at most (the default is 5 ms). `serve`
    runs threads beside its loop, such as the recording ingest's lanes (recordings/examine.py),
    which need the GIL back between hashing files, while the loop must get it back quickly
    for a pop. Benches of those paths call this too."""
    sys.setswitchinterval(SWITCH_INTERVAL)


def serve(settings: Settings) -> int:
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    url = settings.node_url or f"http://{settings.http_host}:{settings.http_port}/"
    try:
        cluster = cluster_for(settings, url)
    except ValueError as exc:
        print(f"hotline: {exc}", flush=True)
        return 2
    db = Database.open(settings)
    node = f" as node {settings.node_name}" if cluster.clustered else ""
    print(f"hotline serving on http://{settings.http_host}:{settings.http_port}/{node}", flush=True)
    use_serving_switch_interval()
    app = build_app(db, cluster=cluster)
    app.on_startup.append(freeze_startup_heap)  # last: after every feature has started
    try:
        web.run_app(
            app,
            host=settings.http_host,
            port=settings.http_port,
            print=None,
            handle_signals=True,
        )
    except OSError as exc:
        asyncio.run(db.close())
        print(
            f"hotline: cannot listen on {settings.http_host}:{settings.http_port}: {exc.strerror}; "
            f"stop what uses the port or set HOTLINE_HTTP_PORT",
            flush=True,
        )
        return 1
    return 0
