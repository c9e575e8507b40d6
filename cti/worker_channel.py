"""Messages between the serving process and its CTI database worker (cti/db_process.py):
pickled tuples, each behind a 4-byte length, over a socket pair the two processes share.

Pickle is safe here only because both ends are our own processes, joined by a socket pair
that nothing else can reach; never point this at a network socket.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from typing import Any

_LENGTH = struct.Struct("!I")
MAX_MESSAGE = 64 << 20  # a 360 is a few KiB; anything near this is a bug, not a message


class ChannelClosed(Exception):
    """The other process closed its end, or died."""


def encode(message: tuple[Any, ...]) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(body)) + body


async def read_message(reader: asyncio.StreamReader) -> tuple[Any, ...]:
    try:
        (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
        if length > MAX_MESSAGE:
            raise ChannelClosed(f"message of {length} bytes: the channel is out of step")
        body = await reader.readexactly(length)
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        raise ChannelClosed(str(exc) or type(exc).__name__) from None
    try:
        # Our own worker on a socket pair nothing else can reach (see the module docstring).
        message = pickle.loads(body)  # noqa: S301
    except Exception as exc:  # a torn or foreign frame: nothing after it can be trusted
        raise ChannelClosed(f"undecodable message: {type(exc).__name__}: {exc}") from None
    if not isinstance(message, tuple) or not message:
        raise ChannelClosed(f"not a message: {type(message).__name__}")
    return message
