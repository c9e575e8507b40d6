"""The floor for bench/pop_latency.py: a bare relay, run as its own process.

    python bench/bare_relay.py TCP_PORT WS_PORT

Each line `AGENT PAYLOAD` read on the TCP port goes as-is to that agent's WebSocket
(`/ws?agent=N`): no parsing of AMI, no state, no database. It runs in a process of its own
because `hotline serve` does: a relay inside the bench's own event loop would skip the two
process wake-ups (bench → server, server → bench) that every real pop pays, and would not
be a floor for the same path. Prints `ready` when both ports listen.
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web


async def main(tcp_port: int, ws_port: int) -> None:
    sockets: dict[int, web.WebSocketResponse] = {}

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)  # as the server's hub: same transport
        await ws.prepare(request)
        sockets[int(request.query["agent"])] = ws
        async for _ in ws:
            pass
        return ws

    async def line_handler(reader: asyncio.StreamReader, _w: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            agent, payload = line.decode().split(" ", 1)
            await sockets[int(agent)].send_str(payload)

    app = web.Application()
    app.router.add_get("/ws", ws_handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", ws_port).start()
    await asyncio.start_server(line_handler, "127.0.0.1", tcp_port)
    print("ready", flush=True)
    await asyncio.Event().wait()  # until the bench terminates us


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
