"""The `hotline` command as a user runs it: real subprocesses, real exit codes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from crm_core.settings import Settings


def hotline(
    settings: Settings, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": settings.database_url, "HOTLINE_VAR_DIR": settings.var_dir}
    return subprocess.run(
        [sys.executable, "-m", "agent_desktop.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        cwd=cwd,
    )


def test_seed_search_lookup_history_round_trip(settings: Settings, db: object) -> None:
    done = hotline(settings, "seed", "--customers", "120", "--seed", "9", "--show-logins")
    assert done.returncode == 0, done.stderr
    assert "seeded 120 customers" in done.stdout and "agent1001" in done.stdout
    assert "100.0%" in done.stderr  # the progress bar reached the end

    found = hotline(settings, "customers", "search", "C00000001")
    assert found.returncode == 0
    hit = json.loads(found.stdout.splitlines()[0])
    assert hit["customer_id"] == 1 and hit["matched_on"] == "code"

    listing = hotline(settings, "history", "list", "customer", "1")
    assert listing.returncode == 1 and "no history" in listing.stdout  # bulk seed is not history


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("seed", "--customers", "many"), "not a whole number"),
        (("history", "restore", "customer", "1"), "one of the arguments"),
        (("history", "restore", "customer", "1", "--at", "yesterday"), "is not a time"),
        (("history", "restore", "customer", "999", "--to-change", "5"), "no change #5"),
        (("customers", "merge", "1", "1"), "merged into itself"),
        (("customers", "search", ""), "type something"),
        (("restore", "/nonexistent.backup", "--yes"), "does not exist"),
        (("restore", "/nonexistent.backup"), "--yes"),
    ],
)
def test_bad_input_gets_a_message_and_nonzero_exit(
    settings: Settings, db: object, args: tuple[str, ...], message: str
) -> None:
    done = hotline(settings, *args)
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_setting_names_the_key(settings: Settings) -> None:
    env = {**os.environ, "HOTLINE_AMI_PORT": "x"}
    done = subprocess.run(
        [sys.executable, "-m", "agent_desktop.cli", "db", "upgrade"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "ami_port" in done.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_health_and_sends_visitors_to_login(settings: Settings, db: object) -> None:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": settings.database_url, "HOTLINE_HTTP_PORT": str(port)}
    server = subprocess.Popen(
        [sys.executable, "-m", "agent_desktop.cli", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert json.loads(r.read()) == {
                        "status": "ok", "database": "ok",
                        "node": "local", "role": "leader", "leases": [],  # one node alone
                    }  # fmt: skip
                    break
            except OSError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "server did not answer within 30 s"
                time.sleep(0.2)
        page = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Accept": "text/html"})
        with urllib.request.urlopen(page, timeout=2) as r:
            assert "/login" in r.url
            assert "400" in r.read().decode()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/nope", timeout=2)
        except urllib.error.HTTPError as exc:
            assert exc.code == 401 and json.loads(exc.read())["error_id"] == "not_authenticated"
        else:
            raise AssertionError("an unauthenticated API call was not refused")
    finally:
        server.terminate()
        server.communicate(timeout=10)
