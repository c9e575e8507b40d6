"""Wallboard fan-out: 1,000 WebSocket clients on one server process, 1% of them not reading.

The server (a child process) runs the real WallboardHub of agent_desktop/wallboard/live.py
(bounded outbox per socket, abort on overflow, aiohttp heartbeat) and pushes a realistic
snapshot (2 queues, 60 agents, ~8 KB) once a second. The clients (this process, one asyncio
loop) record when each update arrives; the snapshot carries its send time, so the delay of
one update is arrival minus `at` on the same clock.

Two phases: all clients healthy, then the same with 1% of them stopped reading (they
completed the handshake, then never read a byte and never answer pings). Printed: per
update, the time until 95% and 100% of the healthy clients had it (median and worst over
the updates), p50/p99 of every delivery, when the slow clients were dropped, and the server's
RSS per idle connection.

    .venv/bin/python bench/desktop_fanout.py [--clients 1000] [--seconds 12]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import os
import re
import resource
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import ClientSession, TCPConnector, WSMsgType, web

from agent_desktop.wallboard.live import WallboardHub
from crm_core.db import Database

AT = re.compile(r'"at": ([0-9.]+)')
HEARTBEAT = 6.0  # seconds; the product uses 20, shorter here so the bench sees the drop


def raise_fd_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return wanted


def fake_snapshot() -> dict[str, Any]:
    agents = [
        {
            "queue": q,
            "interface": f"PJSIP/{1000 + i}",
            "member_name": f"agent{1000 + i}",
            "device": "available",
            "paused": False,
            "pause_reason": "",
            "calls_taken": i,
            "since": time.time() - i,
            "state": "available",
            "in_state_seconds": float(i),
        }
        for q in ("hotline", "vip")
        for i in range(30)
    ]
    queue = {
        "waiting": 3,
        "longest_wait": 12.5,
        "agents": {"available": 20, "ringing": 3, "busy": 5, "paused": 2, "unavailable": 0},
        "answered_today": 412,
        "abandoned_today": 9,
        "missed_today": 2,
        "service_level": 91.3,
    }
    return {
        "v": 1,
        "type": "wallboard",
        "at": time.time(),
        "queues": [{"queue": q, **queue} for q in ("hotline", "vip")],
        "agents": agents,
        "unprocessed": [
            {"user_id": i, "username": f"agent{i}", "display_name": "坐席", "unprocessed": 2}
            for i in range(20)
        ],
        "service_level_seconds": 20,
    }


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def run_server(port: int, ready: Any) -> None:
    raise_fd_limit()

    async def snapshot() -> dict[str, Any]:
        return fake_snapshot()

    # No database: every screen here is region-less, the only path that would query it.
    hub = WallboardHub(cast(Database, None), snapshot, heartbeat=HEARTBEAT)

    async def ws(request: web.Request) -> web.StreamResponse:
        return await hub.serve(request, None)

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(
            {"screens": len(hub.screens), "dropped": hub.dropped, "rss_kib": rss_kib()}
        )

    async def start(request: web.Request) -> web.Response:
        tasks.append(asyncio.create_task(hub.run(1.0)))
        return web.json_response({"ok": True})

    tasks: list[asyncio.Task[None]] = []
    app = web.Application()
    app.router.add_get("/ws", ws)
    app.router.add_get("/stats", stats)
    app.router.add_post("/start", start)
    ready.set()
    web.run_app(app, host="127.0.0.1", port=port, print=None, backlog=2048, handle_signals=True)


class Client:
    def __init__(self) -> None:
        self.arrivals: dict[float, float] = {}  # snapshot `at` → arrival time

    async def run(self, session: ClientSession, url: str) -> None:
        async with session.ws_connect(url, max_msg_size=0, autoping=True) as ws:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    now = time.time()
                    found = AT.search(msg.data[:120])
                    if found:
                        self.arrivals[float(found.group(1))] = now


async def slow_client(port: int) -> asyncio.StreamWriter:
    """Handshake, then never read again (reading paused, tiny receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    cast(asyncio.Transport, writer.transport).pause_reading()
    return writer


async def get(session: ClientSession, base: str, path: str) -> dict[str, Any]:
    async with session.get(base + path) as response:
        return cast(dict[str, Any], await response.json())


def summarize(clients: list[Client], since: float, label: str) -> None:
    ticks = sorted({at for c in clients for at in c.arrivals if at >= since})[
        :-1
    ]  # last may be partial
    to95, to100, all_delays = [], [], []
    missing = 0
    for at in ticks:
        delays = sorted(c.arrivals[at] - at for c in clients if at in c.arrivals)
        missing += len(clients) - len(delays)
        all_delays.extend(delays)
        if len(delays) == len(clients):
            to95.append(delays[int(0.95 * len(delays)) - 1])
            to100.append(delays[-1])
    all_delays.sort()

    def ms(x: float) -> str:
        return f"{x * 1000:7.1f} ms"

    print(f"\n{label}: {len(clients)} healthy clients, {len(ticks)} updates")
    if not to95:
        print("  no complete update")
        return
    print(f"  time to 95% of clients:  median {ms(statistics.median(to95))}, worst {ms(max(to95))}")
    print(
        f"  time to 100% of clients: median {ms(statistics.median(to100))}, worst {ms(max(to100))}"
    )
    p50 = all_delays[len(all_delays) // 2]
    p99 = all_delays[int(0.99 * len(all_delays)) - 1]
    print(f"  every delivery: p50 {ms(p50)}, p99 {ms(p99)}, max {ms(all_delays[-1])}")
    print(f"  updates a healthy client missed: {missing}")
    print("  time to 100% per update (ms):", " ".join(f"{x * 1000:.0f}" for x in to100))


async def bench(clients_n: int, seconds: float, port: int) -> None:
    base = f"http://127.0.0.1:{port}"
    slow_n = max(1, clients_n // 100)
    healthy_n = clients_n - slow_n
    connector = TCPConnector(limit=0)
    async with ClientSession(connector=connector) as session:
        rss_before = (await get(session, base, "/stats"))["rss_kib"]
        clients = [Client() for _ in range(healthy_n)]
        tasks = []
        for i, client in enumerate(clients):
            tasks.append(
                asyncio.create_task(client.run(session, base.replace("http", "ws") + "/ws"))
            )
            if i % 100 == 99:
                await asyncio.sleep(0.05)
        while (await get(session, base, "/stats"))["screens"] < healthy_n:
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
        rss_idle = (await get(session, base, "/stats"))["rss_kib"]
        print(
            f"server RSS: {rss_before / 1024:.1f} MiB before, {rss_idle / 1024:.1f} MiB with "
            f"{healthy_n} idle connections = "
            f"{(rss_idle - rss_before) / healthy_n:.1f} KiB per connection"
        )
        async with session.post(base + "/start") as response:
            await response.read()
        start = time.time()
        await asyncio.sleep(seconds)
        summarize(clients, start + 1, "phase 1, everyone reading")

        slow = [await slow_client(port) for _ in range(slow_n)]
        print(f"\nphase 2: {slow_n} clients connected that never read (1%)")
        phase2 = time.time()
        dropped_at = None
        deadline = phase2 + max(seconds, HEARTBEAT * 2 + 4)
        while time.time() < deadline:
            stats = await get(session, base, "/stats")
            if dropped_at is None and stats["screens"] <= healthy_n:
                dropped_at = time.time() - phase2
            await asyncio.sleep(0.25)
        stats = await get(session, base, "/stats")
        summarize(clients, phase2 + 1, "phase 2, with the slow clients")
        print(
            f"  slow clients gone after {dropped_at:.1f} s"
            if dropped_at is not None
            else "  slow clients NOT dropped",
            f"(outbox overflows: {stats['dropped']}, heartbeat {HEARTBEAT:.0f} s)",
        )
        for writer in slow:
            writer.transport.abort()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=12.0)
    args = parser.parse_args()
    limit = raise_fd_limit()
    if limit < args.clients * 2 + 100:
        sys.exit(f"the fd limit ({limit}) is too low for {args.clients} clients")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=run_server, args=(port, ready), daemon=True)
    server.start()
    ready.wait(10)
    time.sleep(0.5)
    try:
        asyncio.run(bench(args.clients, args.seconds, port))
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()
