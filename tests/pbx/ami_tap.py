"""An AMI tap: records the raw event stream to a file and waits for events in tests."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from crm_core.settings import Settings

Event = dict[str, str]


class AmiTap:
    """Records the raw AMI byte stream to a file and keeps parsed events for assertions.

    Reconnects after Asterisk restarts, so a transcript can span a restart.
    """

    def __init__(self, settings: Settings, transcript: Path) -> None:
        self.settings = settings
        self.transcript = transcript
        self.events: list[Event] = []
        self.responses: dict[str, Event] = {}
        self._cond = threading.Condition()
        self._closing = False
        self._sock: socket.socket | None = None
        self._raw = transcript.open("wb")
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ami-tap", daemon=True)
        self._thread.start()
        if not self._connected.wait(30):
            raise RuntimeError("AMI tap could not log in")

    def _login(self) -> socket.socket:
        s = self.settings
        sock = socket.create_connection((s.ami_host, s.ami_port), timeout=5)
        sock.settimeout(None)
        sock.sendall(
            f"Action: Login\r\nActionID: tap-login\r\nUsername: {s.ami_username}\r\n"
            f"Secret: {s.ami_secret}\r\nEvents: on\r\n\r\n".encode()
        )
        return sock

    def _run(self) -> None:
        while not self._closing:
            try:
                sock = self._login()
            except OSError:
                time.sleep(0.2)
                continue
            self._sock = sock
            self._read(sock)
            self._sock = None

    def _read(self, sock: socket.socket) -> None:
        buffer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            self._raw.write(chunk)
            self._raw.flush()
            buffer += chunk
            while b"\r\n\r\n" in buffer:
                frame, buffer = buffer.split(b"\r\n\r\n", 1)
                self._frame(frame.decode("utf-8", errors="replace"))

    def _frame(self, text: str) -> None:
        fields: Event = {}
        for line in text.split("\r\n"):
            key, sep, value = line.partition(": ")
            if sep and key not in fields:
                fields[key] = value
        with self._cond:
            if "Event" in fields:
                self.events.append(fields)
            elif "Response" in fields:
                self.responses[fields.get("ActionID", "")] = fields
                if fields.get("ActionID") == "tap-login" and fields["Response"] == "Success":
                    self._connected.set()
            self._cond.notify_all()

    def wait_for(
        self, predicate: Callable[[Event], bool], timeout: float = 60, start: int = 0
    ) -> Event:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events[start:]:
                    if predicate(event):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    names = [e.get("Event") for e in self.events[start:]][-40:]
                    raise AssertionError(f"AMI event not seen within {timeout}s; last: {names}")
                self._cond.wait(remaining)

    def wait_event(self, name: str, timeout: float = 60, start: int = 0, **fields: str) -> Event:
        def matches(event: Event) -> bool:
            return event.get("Event") == name and all(event.get(k) == v for k, v in fields.items())

        return self.wait_for(matches, timeout, start)

    def mark(self) -> int:
        with self._cond:
            return len(self.events)

    def action(self, name: str, timeout: float = 30, **headers: str) -> Event:
        action_id = f"tap-{time.monotonic_ns()}"
        lines = [f"Action: {name}", f"ActionID: {action_id}"]
        lines += [f"{key}: {value}" for key, value in headers.items()]
        sock = self._sock
        if sock is None:
            raise AssertionError("AMI tap is not connected")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        deadline = time.monotonic() + timeout
        with self._cond:
            while action_id not in self.responses:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no response to AMI {name}")
                self._cond.wait(remaining)
            return self.responses[action_id]

    def close(self) -> None:
        self._closing = True
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.sendall(b"Action: Logoff\r\nActionID: tap-logoff\r\n\r\n")
            sock.close()
        self._thread.join(timeout=5)
        self._raw.close()
