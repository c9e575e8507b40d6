"""The serving process's side of the CTI database worker (cti/db_worker.py): start it, send
it work in order, get answers and published events back, and restart it if it dies.

The worker is forked from multiprocessing's fork server, which has cti.db_worker imported
already: a worker starts in tens of milliseconds, not the second a fresh interpreter takes,
and it never inherits this process's threads or open connections (a plain fork would).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import multiprocessing.context
import socket
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from crm_core.settings import Settings
from cti import db_worker
from cti.pop_payload import Extra
from cti.worker_channel import ChannelClosed, encode, read_message

log = logging.getLogger(__name__)
Publish = Callable[[object], Coroutine[Any, Any, None]]
START_TIMEOUT = 60.0  # the first start also starts the fork server
STOP_TIMEOUT = 30.0
RESTART_DELAY = 0.5
# Messages wait this long at most, then go in one write. Each write wakes the worker, and
# waking a sleeping process cost the serving loop ~0.25 ms per write on the 2-vCPU VM: per
# event, that held up a ring behind a new call's events in the same read (bench/pop_latency.py).
SEND_EVERY = 0.005
MAX_BUFFERED = 100_000  # messages kept while a dead worker is replaced

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(["cti.db_worker"])


class WorkerFailed(Exception):
    """The worker could not start, or failed a call; the message says why."""


class DbProcess:
    def __init__(
        self, settings: Settings, publish: Publish, open_requests: Extra | None = None
    ) -> None:
        self.settings = settings
        self.open_requests = open_requests
        self._publish = publish
        self._process: multiprocessing.context.ForkServerProcess | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._results: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._publishing: set[asyncio.Task[None]] = set()
        self._buffered: deque[bytes] = deque()
        self._outgoing: list[bytes] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._stopping = False
        self._restarting: asyncio.Task[None] | None = None
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        """Start the worker and wait until its database is open; raises WorkerFailed."""
        self._stopping = False
        await self._start()

    async def _start(self) -> None:
        ours, theirs = socket.socketpair()
        process = _context.Process(
            target=db_worker.main,
            args=(self.settings, theirs, self.open_requests),
            name="hotline-cti-db",
            daemon=True,
        )
        try:
            await asyncio.to_thread(process.start)  # the first one starts the fork server
        finally:
            theirs.close()
        self._process = process
        # Not self._writer until the worker is ready: until then, new work joins the buffer,
        # behind what was sent while no worker ran, so the order holds.
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        try:
            async with asyncio.timeout(START_TIMEOUT):
                first = await read_message(reader)
            if first[0] != "ready":
                raise WorkerFailed(f"the CTI database worker did not start: {first[-1]}")
        except (TimeoutError, ChannelClosed, WorkerFailed) as exc:
            writer.close()
            await self._end_process()
            if isinstance(exc, WorkerFailed):
                raise
            raise WorkerFailed(f"the CTI database worker did not start: {exc}") from None
        while self._buffered:  # what was sent while a dead worker was being replaced
            writer.write(self._buffered.popleft())
        self._writer = writer
        self._reader_task = asyncio.create_task(self._read(reader), name="cti-db-results")

    def send(self, kind: str, *args: object) -> None:
        """Fire and forget, in order with everything else sent; written within SEND_EVERY."""
        self._outgoing.append(encode((kind, *args)))
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(SEND_EVERY, self._flush)

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._outgoing:
            outgoing, self._outgoing = self._outgoing, []
            self._write(b"".join(outgoing))

    async def call(self, op: str, *args: object) -> Any:
        """Ask the worker for `op` and wait for its answer; raises WorkerFailed."""
        if self._stopping and op != "close":
            raise WorkerFailed("the CTI database worker is stopped")
        call_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._results[call_id] = future
        try:
            self.send("call", call_id, op, args)
            if op != "build":  # a 360 is asked for seconds before the ring; the rest is waited on
                self._flush()
            return await future
        finally:
            self._results.pop(call_id, None)

    async def settled(self) -> None:
        """Wait for the publishes of events the worker has sent back so far."""
        await asyncio.gather(*list(self._publishing), return_exceptions=True)

    async def stop(self) -> None:
        """Let the worker finish its writes and close its engine, then end it."""
        if self._process is None and self._restarting is None:
            return
        self._stopping = True
        restarting, self._restarting = self._restarting, None
        if restarting is not None and not restarting.done():
            restarting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await restarting
        with contextlib.suppress(WorkerFailed, TimeoutError):
            async with asyncio.timeout(STOP_TIMEOUT):
                await self.call("close")
        await self._end_process()
        await self.settled()

    def _write(self, data: bytes) -> None:
        writer = self._writer
        if writer is not None and not writer.is_closing():
            writer.write(data)
        elif self._stopping:
            log.warning("CTI database worker stopped: %d bytes of work not sent", len(data))
        elif len(self._buffered) < MAX_BUFFERED:
            self._buffered.append(data)
        else:
            log.error("ALERT CTI database worker down: %d messages waiting, dropping", MAX_BUFFERED)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                message = await read_message(reader)
                try:
                    self._on_message(message)
                except Exception:  # a malformed answer is the worker's bug: log, go on
                    log.exception("CTI database worker sent %r", message[:2])
        except ChannelClosed as exc:
            if not self._stopping:
                log.warning("CTI database worker channel closed: %s", exc)
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        self._fail_calls("the CTI database worker went away")
        if not self._stopping:
            self._restarting = asyncio.create_task(self._restart(), name="cti-db-restart")

    def _on_message(self, message: tuple[Any, ...]) -> None:
        if message[0] == "publish":
            task: asyncio.Task[None] = asyncio.create_task(self._publish(message[1]))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)
        elif message[0] == "result":
            _kind, call_id, ok, value = message
            future = self._results.get(call_id)
            if future is not None and not future.done():
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(WorkerFailed(value))

    def _fail_calls(self, why: str) -> None:
        for future in self._results.values():
            if not future.done():
                future.set_exception(WorkerFailed(why))

    async def _restart(self) -> None:
        """A worker that died (killed, out of memory) is replaced; messages sent meanwhile
        wait in order. Those it had not written yet are lost, and said so."""
        process = self._process
        code = process.exitcode if process is not None else None
        log.error(
            "ALERT CTI database worker died (exit code %s); starting a new one; call log "
            "and pop rows it had not written yet are lost",
            code,
        )
        await self._end_process()
        while not self._stopping:
            await asyncio.sleep(RESTART_DELAY)
            try:
                await self._start()
                self.restarts += 1
                return
            except WorkerFailed as exc:
                log.error("%s; trying again", exc)

    async def _end_process(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        task, self._reader_task = self._reader_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        process, self._process = self._process, None
        if process is None:
            return
        await asyncio.to_thread(process.join, 5.0)
        if process.exitcode is None:
            log.warning("CTI database worker did not exit; killing it")
            process.kill()
            await asyncio.to_thread(process.join, 5.0)
        process.close()
