"""The application context: what every feature gets at start-up, and the key it is kept under.

It imports no feature, so every feature can import it without a circle; server.py builds one
context per app and hands it to each feature's `setup(app, ctx)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from crm_core.cluster.runtime import Cluster, SingleNode
from crm_core.db import Database
from crm_core.events import EventBus
from crm_core.settings import Settings


@dataclass
class AppContext:
    """The settings, the database and the event bus, shared by every feature."""

    settings: Settings
    db: Database
    bus: EventBus = field(default_factory=EventBus)
    # What CTI asks other packages without importing them (see calls/ivr.py):
    # status_for, request_owner (the IVR), open_requests (the pop).
    providers: dict[str, Any] = field(default_factory=dict)
    # This node's place in a cluster (docs/deploy.md); one node on its own by default.
    cluster: Cluster = field(default_factory=SingleNode)


CONTEXT_KEY = web.AppKey("context", AppContext)
DB_KEY = web.AppKey("db", Database)
# A feature adds its routes, middlewares and background workers (app.cleanup_ctx) to the app.
Feature = Callable[[web.Application, AppContext], None]
