"""A real webhook receiver on loopback, as an integrator would write it from
docs/webhooks.md: it checks the signature with its own code (not the sender's), dedupes on
X-Hotline-Delivery, and records what it got."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


def verify_signature(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    """The snippet in docs/webhooks.md."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    if "t" not in parts or "v1" not in parts or not parts["t"].isdigit():
        return False
    if abs(time.time() - int(parts["t"])) > tolerance:
        return False
    signed = parts["t"].encode() + b"." + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Receiver:
    secret: str = ""
    port: int = field(default_factory=free_port)
    answer: int = 200  # what it replies to a well-signed request
    accepted: list[dict[str, Any]] = field(default_factory=list)  # first time per delivery id
    requests: int = 0
    bad_signatures: int = 0
    duplicates: int = 0
    runner: web.AppRunner | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.arrived.set()
        body = await request.read()
        header = request.headers.get("X-Hotline-Signature", "")
        if not verify_signature(self.secret, header, body):
            self.bad_signatures += 1
            return web.Response(status=401, text="bad signature")
        if self.answer != 200:
            return web.Response(status=self.answer, text="not now")
        delivery = request.headers["X-Hotline-Delivery"]
        if any(a["delivery"] == delivery for a in self.accepted):
            self.duplicates += 1
        else:
            self.accepted.append(
                {
                    "delivery": delivery,
                    "event": request.headers["X-Hotline-Event"],
                    "payload": json.loads(body),
                }
            )
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
