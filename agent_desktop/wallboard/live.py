"""The supervisor wallboard: /wallboard (page) and /ws/wallboard (live numbers).

One broadcaster computes `Wallboard.snapshot()` once a second and hands the same encoded
text to every open wallboard. Each socket has its own small outbox and pump task, so a
screen that stops reading costs the others nothing: when its outbox is full the socket is
aborted (no close handshake, which would itself wait on the stuck peer), and the aiohttp
heartbeat drops peers that stop answering pings. A supervisor with a region sees the
unprocessed calls of their region's agents and their region's service requests only; the
queues are shared by everyone. The snapshot itself is put together in business.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from sqlalchemy import select

import agent_desktop.wallboard.business as business
from agent_desktop.common.errors import Forbidden
from agent_desktop.common.guards import authenticate_websocket, current_user, require_roles
from agent_desktop.common.labels import TICKET_LABELS
from agent_desktop.common.pages import add_nav, render, translator
from agent_desktop.context import AppContext
from agent_desktop.services import BRIDGE_KEY
from crm_core.db import Database
from crm_core.models import User
from cti.wallboard import Wallboard

log = logging.getLogger(__name__)
# The auditor watches read-only (the wallboard has no actions).
ROLES = ("supervisor", "admin", "auditor")
OUTBOX_LIMIT = 8
PERIOD = 1.0
HEARTBEAT = 20.0
REGION_CACHE_SECONDS = 60.0
Snapshot = Callable[[], Awaitable[dict[str, Any]]]


@dataclass(eq=False)
class Screen:
    ws: web.WebSocketResponse
    region: str | None
    transport: asyncio.BaseTransport | None
    outbox: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(OUTBOX_LIMIT))

    def offer(self, text: str) -> bool:
        try:
            self.outbox.put_nowait(text)
            return True
        except asyncio.QueueFull:
            return False

    async def pump(self) -> None:
        while True:
            await self.ws.send_str(await self.outbox.get())

    def abort(self) -> None:
        # A peer that does not read would block a polite close; cut the connection.
        if isinstance(self.transport, asyncio.Transport):
            self.transport.abort()


class WallboardHub:
    def __init__(self, db: Database, snapshot: Snapshot, heartbeat: float = HEARTBEAT) -> None:
        self.db = db
        self.snapshot = snapshot
        self.heartbeat = heartbeat
        self.screens: set[Screen] = set()
        self.dropped = 0
        self.last: dict[str, Any] | None = None
        self._regions: dict[str, tuple[float, set[int]]] = {}

    async def _region_users(self, region: str) -> set[int]:
        cached = self._regions.get(region)
        if cached is not None and time.monotonic() - cached[0] < REGION_CACHE_SECONDS:
            return cached[1]
        async with self.db.connect() as conn:
            ids = set((await conn.scalars(select(User.id).where(User.region == region))).all())
        self._regions[region] = (time.monotonic(), ids)
        return ids

    async def body_for(self, snap: dict[str, Any], region: str | None) -> dict[str, Any]:
        """What a screen of `region` sees (None: every region)."""
        if region is None:
            return snap
        ids = await self._region_users(region)
        body = {**snap, "unprocessed": [u for u in snap["unprocessed"] if u["user_id"] in ids]}
        if "business" in snap:
            body["business"] = business.for_region(snap["business"], region)
        return body

    async def encode_for(self, snap: dict[str, Any]) -> dict[str | None, str]:
        """The snapshot as text, once per distinct region among the open screens."""
        texts: dict[str | None, str] = {}
        for region in {s.region for s in self.screens} | {None}:
            body = await self.body_for(snap, region)
            texts[region] = json.dumps(body, ensure_ascii=False, default=str)
        return texts

    async def push(self) -> int:
        snap = await self.snapshot()
        self.last = snap
        texts = await self.encode_for(snap)
        sent = 0
        for screen in list(self.screens):
            if screen.offer(texts[screen.region]):
                sent += 1
            else:
                self.dropped += 1
                self.screens.discard(screen)
                screen.abort()
        return sent

    async def run(self, period: float = PERIOD) -> None:
        while True:
            started = time.monotonic()
            try:
                if self.screens:
                    await self.push()
            except Exception:
                log.exception("wallboard: snapshot failed")
            await asyncio.sleep(max(0.05, period - (time.monotonic() - started)))

    async def serve(self, request: web.Request, region: str | None) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=self.heartbeat, max_msg_size=4096)
        await ws.prepare(request)
        screen = Screen(ws, region, request.transport)
        pump = asyncio.create_task(screen.pump(), name="wallboard-pump")
        self.screens.add(screen)
        try:
            if self.last is not None:  # something to show at once, before the next tick
                screen.offer((await self.encode_for(self.last))[region])
            async for msg in ws:
                if msg.type is WSMsgType.TEXT and msg.data == '{"v":1,"type":"ping"}':
                    screen.offer('{"v":1,"type":"pong"}')
        finally:
            self.screens.discard(screen)
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
        return ws

    async def close_all(self) -> None:
        for screen in list(self.screens):
            screen.abort()


HUB_KEY = web.AppKey("wallboard_hub", WallboardHub)
STAGE_LABELS = TICKET_LABELS["request_state"]


def with_presence(
    app: web.Application, snap: dict[str, Any], presence: dict[int, list[str]]
) -> dict[str, Any]:
    """Where each agent's desktop is open (node names, [] when closed), and the count."""
    directory = app[BRIDGE_KEY].directory
    nodes_of = {}
    for user_id, nodes in presence.items():
        agent = directory.by_id(user_id)
        if agent is not None:
            nodes_of[agent.username] = sorted(nodes)
    agents = [{**a, "desktop": nodes_of.get(a.get("member_name", ""), [])} for a in snap["agents"]]
    return {**snap, "agents": agents, "desktops_online": len(presence)}


def _region(role: str, region: str | None) -> str | None:
    return region if role == "supervisor" else None


WB_STRINGS = (
    "Waiting",
    "Longest wait",
    "Available",
    "Ringing",
    "Busy",
    "Paused",
    "Unavailable",
    "Answered today",
    "Abandoned today",
    "Missed today",
    "Service level",
    "Queue",
    "Connected to the server",
    "Reconnecting…",
    "No calls",
    # The business tiles and today's queue figures (wallboard/business.py).
    "Open service requests",
    "Not dispatched in time",
    "Not accepted in time",
    "Follow-ups due today",
    "Late today",
    "Overdue from earlier days",
    "Agents in wrap-up",
    "Wrap-up",
    "Region",
    "No region",
    "Total",
    "Open",
    "Abandon rate",
    "Nobody",
    "No calls today",
    # Presence: where each agent's desktop is open (a node's name in a cluster).
    "Online",
    "Not open",
    "Desktops online",
)


@require_roles(*ROLES)
async def wallboard_page(request: web.Request) -> web.Response:
    _, user = translator(request), current_user(request)
    table = {m: _(m) for m in WB_STRINGS}
    table |= {f"stage:{code}": _(label) for code, label in STAGE_LABELS.items()}
    strings = json.dumps(table, ensure_ascii=False)
    return render(
        request,
        "wallboard.html",
        strings_json=strings.replace("</", "<\\/"),
        region=_region(user.role, user.region),
    )


async def wallboard_socket(request: web.Request) -> web.StreamResponse:
    user = await authenticate_websocket(request)
    if user.role not in ROLES:
        raise Forbidden("the wallboard is for supervisors and admins")
    return await request.app[HUB_KEY].serve(request, _region(user.role, user.region))


@require_roles(*ROLES)
async def wallboard_json(request: web.Request) -> web.Response:
    user, hub = current_user(request), request.app[HUB_KEY]
    body = await hub.body_for(await hub.snapshot(), _region(user.role, user.region))
    return web.json_response(json.loads(json.dumps(body, ensure_ascii=False, default=str)))


RELAYED_MAX_AGE = 5.0  # seconds: an older snapshot from the leader is not shown as live
LIVE_KIND = "wallboard.live"


def setup(app: web.Application, ctx: AppContext) -> None:
    holder: dict[str, Wallboard] = {}
    relayed: dict[str, dict[str, Any]] = {}
    cluster = ctx.cluster

    def board() -> Wallboard:
        if "board" not in holder:
            bridge = app[BRIDGE_KEY]
            holder["board"] = Wallboard(ctx.db, bridge.tracker, bridge.agents)
        return holder["board"]

    async def local() -> dict[str, Any]:
        snap = await board().snapshot()
        return with_presence(app, snap, cluster.presence())

    async def live() -> dict[str, Any]:
        # In a cluster the calls and agents live on the leader: a follower shows the
        # leader's latest snapshot, with presence (desktops) from the whole cluster.
        if not cluster.clustered or cluster.holds(cluster.leader_lease):
            return await local()
        snap = relayed.get("snap")
        if snap is not None and time.time() - float(snap.get("at", 0)) < RELAYED_MAX_AGE:
            return with_presence(app, snap, cluster.presence())
        return {**await local(), "leader_unreachable": True}

    if cluster.clustered:

        async def keep(body: Any) -> None:
            relayed["snap"] = body

        async def publish_forever() -> None:
            while True:
                try:
                    cluster.publish(LIVE_KIND, await board().snapshot())
                except Exception:
                    log.exception("wallboard: could not publish the live snapshot")
                await asyncio.sleep(PERIOD)

        cluster.on(LIVE_KIND, keep)
        cluster.singleton("wallboard-live", publish_forever)

    composer = business.BoardComposer(ctx.db, live, ctx.settings.timezone)
    hub = WallboardHub(ctx.db, composer.snapshot)
    app[HUB_KEY] = hub

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(hub.run(), name="wallboard-broadcaster")
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await hub.close_all()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/wallboard", wallboard_page)
    app.router.add_get("/ws/wallboard", wallboard_socket)
    app.router.add_get("/api/wallboard", wallboard_json)
    add_nav(app, "/wallboard", "Wallboard", ROLES)
