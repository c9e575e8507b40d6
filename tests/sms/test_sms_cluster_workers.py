"""Two `hotline serve` nodes on one PostgreSQL send a burst of SMS while the leader is
killed (kill -9) half-way: the provider gets every message exactly once (issue #19).

The workers run on the leader only (crm_core/cluster/runtime.py); the outbox's claim lease
and its ask-the-provider-first step (sms_gateway/worker.py) carry the messages the dead
leader had claimed over to the next one. Real processes, a real PostgreSQL database of its
own (so it can run beside the PostgreSQL pass) and the loopback Twilio fake. It needs no
PBX: the nodes' AMI links keep retrying a port where nothing listens.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio

from crm_core import migrate
from crm_core.db import Database
from crm_core.settings import Settings, env_name
from sms_gateway.outbox import enqueue

DATABASE = "test_cluster_sms"
URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{DATABASE}"
MESSAGES = 300
# Its own pytest process, in the Makefile's lane B beside the PostgreSQL pass (it starts
# server processes and kills one; kept apart from the in-process suites), on a PostgreSQL
# database of its own whichever database the rest of the suite uses.
pytestmark = pytest.mark.pbx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _psql(sql: str) -> None:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-q", "-c", sql],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


@pytest.fixture(scope="module")
def settings() -> Settings:
    _psql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    _psql(f"CREATE DATABASE {DATABASE}")
    chosen = Settings(database_url=URL)
    migrate.upgrade(chosen)
    return chosen


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    running = await FakeTwilio().start()
    try:
        yield running
    finally:
        await running.stop()


class Node:
    def __init__(self, name: str, fake: FakeTwilio, workdir: Path) -> None:
        self.name = name
        self.port = _free_port()
        self.settings = Settings(database_url=URL).replace(
            node_name=name,
            http_port=self.port,
            fastagi_port=_free_port(),
            ami_port=_free_port(),  # nothing listens: no PBX in this test
            sms_backend="twilio",
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            twilio_from=FROM_NUMBER,
            twilio_api_base_url=fake.base_url,
            var_dir=str(workdir / name),
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
        env.pop("DATABASE_URL", None)
        for key in ("database_url", "node_name", "http_port", "fastagi_port", "ami_port",
                    "sms_backend", "twilio_account_sid", "twilio_auth_token", "twilio_from",
                    "twilio_api_base_url", "var_dir"):  # fmt: skip
            env[env_name(key)] = str(getattr(self.settings, key))
        self.log = workdir / f"{name}.log"
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "agent_desktop.cli", "serve"],
                env=env, stdout=out, stderr=subprocess.STDOUT, cwd=workdir,
            )  # fmt: skip

    def role(self) -> str:
        try:
            url = f"http://127.0.0.1:{self.port}/healthz"
            with urllib.request.urlopen(url, timeout=2) as response:
                return str(json.loads(response.read()).get("role"))
        except OSError:
            return "unreachable"

    def wait_role(self, role: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.role() != role:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited: {self.log.read_text()}")
            assert time.monotonic() < deadline, f"{self.name} never {role}: {self.log.read_text()}"
            time.sleep(0.1)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def nodes(settings: Settings, fake: FakeTwilio, tmp_path: Path) -> Iterator[dict[str, Node]]:
    started: dict[str, Node] = {}
    try:
        started["node-1"] = Node("node-1", fake, tmp_path)
        started["node-1"].wait_role("leader")
        started["node-2"] = Node("node-2", fake, tmp_path)
        started["node-2"].wait_role("follower")
        yield started
    finally:
        for node in started.values():
            node.stop()


async def _unsent() -> int:
    conn = await asyncpg.connect(URL.replace("+asyncpg", ""))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM sms_outbox WHERE state <> 'sent'"))
    finally:
        await conn.close()


async def test_a_burst_of_sms_survives_a_kill_9_of_the_leader_once_each(
    settings: Settings, fake: FakeTwilio, nodes: dict[str, Node], tmp_path: Path
) -> None:
    db = Database.open(settings)
    try:
        async with db.transaction() as session:
            for i in range(MESSAGES):
                await enqueue(
                    session, f"+86139{i:08d}", f"【派工单{i}】请回复JD {i}接单", f"burst:{i}"
                )
    finally:
        await db.close()
    deadline = time.monotonic() + 60
    while len(fake.messages) < MESSAGES // 5:
        assert time.monotonic() < deadline, "the leader never started sending"
        await asyncio.sleep(0.05)
    nodes["node-1"].kill()  # mid-burst: some claimed, some sent, most still waiting
    await asyncio.to_thread(nodes["node-2"].wait_role, "leader")
    # Claims the dead leader held come back when their lease runs out (60 s).
    deadline = time.monotonic() + 180
    while await _unsent():
        assert time.monotonic() < deadline, f"{await _unsent()} never sent"
        await asyncio.sleep(0.5)
    bodies = collections.Counter(m["body"] for m in fake.messages)
    assert len(bodies) == MESSAGES, "lost"
    assert [b for b, n in bodies.items() if n > 1] == [], "sent twice"
