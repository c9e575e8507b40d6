"""The real `hotline serve` against the test PBX, and agent browsers as WebSocket clients."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import websockets
from pbx_harness import PbxUnderTest, settings_env

from crm_core.settings import Settings
from crm_core.users import DEMO_PASSWORD


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    settings: Settings
    process: subprocess.Popen[str]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.settings.http_port}"

    def login(self, username: str, password: str = DEMO_PASSWORD) -> tuple[str, str]:
        """(session cookie header, csrf token) after a real login."""
        request = urllib.request.Request(
            f"{self.base}/api/login",
            method="POST",
            data=json.dumps({"username": username, "password": password}).encode(),
            headers={"Content-Type": "application/json", "Origin": self.base},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            cookie = SimpleCookie(response.headers["Set-Cookie"])
            body = json.loads(response.read())
        header = "; ".join(f"{k}={v.value}" for k, v in cookie.items())
        return header, str(body["csrf_token"])

    def get_json(self, path: str, session: tuple[str, str]) -> Any:
        request = urllib.request.Request(
            f"{self.base}{path}", headers={"Cookie": session[0], "Accept": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=15) as response:
            return json.loads(response.read())

    def post(self, path: str, session: tuple[str, str], body: dict[str, Any]) -> Any:
        return self.send("POST", path, session, body)

    def patch(self, path: str, session: tuple[str, str], body: dict[str, Any]) -> Any:
        return self.send("PATCH", path, session, body)

    def send(self, method: str, path: str, session: tuple[str, str], body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            f"{self.base}{path}",
            method=method,
            data=json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json",
                "Cookie": session[0],
                "X-CSRF-Token": session[1],
                "Origin": self.base,
            },
        )
        with urllib.request.urlopen(request, timeout=15) as response:
            return json.loads(response.read())


@contextmanager
def live_server(
    pbx: PbxUnderTest, database_url: str, workdir: Path, **changes: Any
) -> Iterator[LiveServer]:
    """`hotline serve` on the test PBX; `changes` are more settings (ami_port=...)."""
    settings = pbx.settings.replace(database_url=database_url, http_port=free_port(), **changes)
    env = settings_env(settings)
    log = workdir / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "agent_desktop.cli", "serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=workdir,
        )
    server = LiveServer(settings, process, log)
    try:
        _wait_healthy(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(server: LiveServer, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited: {server.log.read_text()}")
        try:
            with urllib.request.urlopen(f"{server.base}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server not healthy in {timeout}s: {server.log.read_text()}")


@dataclass
class AgentBrowser:
    """An agent's desktop tab: a WebSocket client that records every message it gets."""

    server: LiveServer
    username: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    ws: Any = None
    task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        cookie, _ = await asyncio.to_thread(self.server.login, self.username)
        url = self.server.base.replace("http", "ws") + "/ws"
        self.ws = await websockets.connect(
            url, additional_headers={"Cookie": cookie, "Origin": self.server.base}
        )
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            self.messages.append({**json.loads(raw), "_at": time.monotonic()})

    async def wait_for(self, predicate: Any, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.messages:
                if predicate(message):
                    return message
            await asyncio.sleep(0.05)
        raise AssertionError(f"{self.username}: no such message in {self.messages}")

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)


def pops(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m.get("type") == "pop"]


def environment_ready() -> bool:
    return os.geteuid() == 0
