"""The CTI database worker: a process of its own for the database work that follows calls
(each caller's 360, the call log, the pop rows). This is its side; cti/db_process.py starts
and talks to it.

Why a process: this work was on a thread of the serving process, and a thread shares the
GIL. When a ring arrived while the thread was in SQLAlchemy (a new call's 360 or call-log
row, as often happens at the moment another call rings), the serving loop waited for the GIL
at each step before the pop could go out: with the call log and pop rows switched off, the
pop's p99 at 10 calls/s fell from 2.7-2.9x the bare relay to 1.5-1.6x (bench/pop_latency.py).
A process has its own GIL.

Messages in (see cti/worker_channel.py), handled in the order they were sent:
  ("log", event)                  a tracker event for the call log
  ("pop", kind, data)             a pop row or receipt
  ("fence", {lease: epoch})       the lease epochs later writes are made under (a cluster)
  ("call", id, op, args)          op "build" (a 360), "drain" or "close"; answered with
                                  ("result", id, ok, value or error text)
Messages out: ("ready",) or ("failed", why) once at start, ("result", ...), and
("publish", event) for events the call log raises (CallRecordingFinished), which the
serving process publishes on its bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from dataclasses import dataclass
from typing import Any

from crm_core.db import Database
from crm_core.lookup import NumberLookup
from crm_core.settings import Settings
from cti.call_log import CallLogWriter
from cti.directory import AgentDirectory
from cti.pop_payload import Extra, Pop360Builder
from cti.pop_writer import PopWriter
from cti.worker_channel import ChannelClosed, encode, read_message

log = logging.getLogger(__name__)


class _ChannelPublisher:
    """The bus as the call log sees it here: events go back to the serving process."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    async def publish(self, event: object) -> None:
        self.writer.write(encode(("publish", event)))


@dataclass
class Writers:
    """What lives in the worker: the 360 builder, the call log and the pop rows, with their
    own engine, directory and number lookup."""

    db: Database
    call_log: CallLogWriter
    pops: PopWriter
    builder: Pop360Builder
    finder: NumberLookup

    @classmethod
    async def open(
        cls, settings: Settings, publisher: _ChannelPublisher, open_requests: Extra | None
    ) -> Writers:
        db = Database.open(settings)
        finder: NumberLookup | None = None
        try:
            finder = await NumberLookup(settings).open()
            directory = AgentDirectory(db)
            await directory.reload()
        except BaseException:
            if finder is not None:
                await finder.close()
            await db.close()
            raise
        writers = cls(
            db,
            CallLogWriter(db, directory, finder, publisher),
            PopWriter(db),
            Pop360Builder(db, finder, open_requests),
            finder,
        )
        writers.pops.fence = writers.call_log.fence  # one set of epochs for both
        writers.call_log.start()
        writers.pops.start()
        return writers

    async def drain(self) -> None:
        await self.call_log.drain()
        await self.pops.drain()

    async def close(self) -> None:
        try:
            await self.call_log.stop()
            await self.pops.stop()
        finally:
            await self.finder.close()
            await self.db.close()


def main(settings: Settings, sock: socket.socket, open_requests: Extra | None) -> None:
    """The worker process's entry point."""
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s[cti-db] %(message)s",
    )
    # Ctrl-C in a terminal reaches the whole process group: the serving process closes this
    # worker itself, after the last writes, so the worker must not die first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(10)
    asyncio.run(_serve(settings, sock, open_requests))


async def _serve(settings: Settings, sock: socket.socket, open_requests: Extra | None) -> None:
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    try:
        writers = await Writers.open(settings, _ChannelPublisher(writer), open_requests)
    except Exception as exc:
        log.exception("could not open the database")
        writer.write(encode(("failed", f"{type(exc).__name__}: {exc}")))
        await writer.drain()
        writer.close()
        return
    writer.write(encode(("ready",)))
    calls: set[asyncio.Task[None]] = set()
    try:
        while True:
            message = await read_message(reader)
            if message[0] == "call" and message[2] == "close":
                await asyncio.gather(*calls, return_exceptions=True)
                await writers.close()
                writer.write(encode(("result", message[1], True, None)))
                await writer.drain()
                return
            try:
                _handle(writers, writer, message, calls)
            except Exception:  # one malformed message must not end the worker
                log.exception("bad message %r", message[:2])
    except ChannelClosed:
        log.warning("the serving process went away; closing")
        await writers.close()
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def _handle(
    writers: Writers,
    writer: asyncio.StreamWriter,
    message: tuple[Any, ...],
    calls: set[asyncio.Task[None]],
) -> None:
    kind = message[0]
    if kind == "log":
        writers.call_log.submit(message[1])
    elif kind == "pop":
        writers.pops.submit(message[1], message[2])
    elif kind == "fence":
        # At once, for the writes still queued too: a node that lost a lease stops writing
        # under it now, and one that took a lease had nothing queued for it.
        writers.call_log.fence.set(message[1])
    elif kind == "call":
        # A task, so a 360 being built never holds up the log and pop messages behind it.
        task = asyncio.create_task(_answer(writers, writer, message[1], message[2], message[3]))
        calls.add(task)
        task.add_done_callback(calls.discard)
    else:
        log.error("unknown message %r", kind)


async def _answer(
    writers: Writers, writer: asyncio.StreamWriter, call_id: int, op: str, args: tuple[Any, ...]
) -> None:
    try:
        if op == "build":
            value: Any = await writers.builder.build(*args)
        elif op == "drain":
            await writers.drain()
            value = None
        else:
            raise ValueError(f"unknown call {op!r}")
    except Exception as exc:
        log.exception("%s failed", op)
        writer.write(encode(("result", call_id, False, f"{type(exc).__name__}: {exc}")))
        return
    writer.write(encode(("result", call_id, True, value)))
