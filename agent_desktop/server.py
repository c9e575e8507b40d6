"""The aiohttp web edge. For now: a health endpoint and a landing page; the desktop issue adds
login, the agent desktop and the wallboard here.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy import text

from crm_core.db import Database
from crm_core.errors import HotlineError
from crm_core.events import EventBus
from crm_core.settings import Settings

log = logging.getLogger(__name__)
DB_KEY = web.AppKey("db", Database)
SWITCH_INTERVAL = 0.0002  # seconds; see serve()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class AppContext:
    """What every feature gets at start-up: the settings, the database and the event bus."""

    settings: Settings
    db: Database
    bus: EventBus = field(default_factory=EventBus)
    # What CTI asks other packages without importing them (see ivr_wiring.py):
    # status_for, request_owner (the IVR), open_requests (the pop).
    providers: dict[str, Any] = field(default_factory=dict)


CONTEXT_KEY = web.AppKey("context", AppContext)
# A feature adds its routes, middlewares and background workers (app.cleanup_ctx) to the app.
Feature = Callable[[web.Application, AppContext], None]


def features() -> list[Feature]:
    """Every feature of the product, in the order they are set up. The one wiring point."""
    # Imported here: the features import this module (AppContext, CONTEXT_KEY).
    from agent_desktop import (
        auth,
        cti_feature,
        desktop_api,
        ivr_wiring,
        pages,
        pages_auth,
        pages_customers,
        pages_desktop,
        pages_tickets,
        recordings_api,
        sms_webhook,
        ticketing_api,
        wallboard_feature,
    )

    # pages before auth: its HTML error pages wrap the authentication checks.
    return [
        pages.setup,
        auth.setup,
        recordings_api.setup,
        pages_desktop.setup,
        pages_customers.setup,
        pages_auth.setup,
        sms_webhook.setup,
        ticketing_api.setup,
        pages_tickets.setup,
        ivr_wiring.setup,
        cti_feature.setup,
        desktop_api.setup,
        wallboard_feature.setup,  # after cti_feature: they use its bridge
    ]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The one place where domain errors become HTTP replies."""
    try:
        return await handler(request)
    except HotlineError as exc:
        return web.json_response(exc.to_dict(), status=exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response(
            {"error_id": f"http_{exc.status}", "message": exc.reason}, status=exc.status
        )


async def health(request: web.Request) -> web.Response:
    # Unauthenticated on purpose: load balancers probe it. It reveals nothing but up/down.
    db = request.app[DB_KEY]
    try:
        async with db.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        log.exception("health check: database unreachable")
        return web.json_response({"status": "down", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})


async def landing(_request: web.Request) -> web.Response:
    # The desktop is the home page; the auth middleware sends a visitor to /login first.
    raise web.HTTPFound("/desktop")


def build_app(db: Database, bus: EventBus | None = None) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=1024**2)
    context = AppContext(db.settings, db, bus or EventBus())
    app[DB_KEY] = db
    app[CONTEXT_KEY] = context
    app.router.add_get("/healthz", health)
    app.router.add_get("/", landing)
    for feature in features():
        feature(app, context)

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
    db = Database.open(settings)
    print(f"hotline serving on http://{settings.http_host}:{settings.http_port}/", flush=True)
    use_serving_switch_interval()
    app = build_app(db)
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
