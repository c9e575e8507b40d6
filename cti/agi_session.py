"""One FastAGI conversation: typed helpers over the command/reply exchange.

Every command has a timeout, so a wedged Asterisk (or a client that is not Asterisk) costs one
connection, never the event loop. A hang-up ends the script with AgiHangup, which the server
treats as the normal end of a call.
"""

from __future__ import annotations

import asyncio
import logging
import re

from cti.agi_protocol import (
    MAX_LINE_BYTES,
    AgiCommandFailed,
    AgiConnectionLost,
    AgiEnvironment,
    AgiHangup,
    AgiProtocolError,
    AgiReply,
    AgiTimeout,
    ReplyAssembler,
    check_variable_name,
    decode_line,
    quote,
)

log = logging.getLogger(__name__)
COMMAND_TIMEOUT = 10.0
KEYED = re.compile(r"[0-9*#]*")


async def read_line(reader: asyncio.StreamReader) -> str:
    """One line, bounded; EOF mid-line or before it means Asterisk let go."""
    try:
        raw = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        raise AgiConnectionLost("connection closed by Asterisk") from exc
    except asyncio.LimitOverrunError as exc:
        raise AgiProtocolError("AGI line is too long") from exc
    except (ConnectionError, OSError) as exc:
        raise AgiConnectionLost(f"connection lost: {exc}") from exc
    if len(raw) > MAX_LINE_BYTES:
        raise AgiProtocolError("AGI line is too long")
    return decode_line(raw)


class AgiSession:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        env: AgiEnvironment,
        command_timeout: float = COMMAND_TIMEOUT,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.env = env
        self.command_timeout = command_timeout
        self.hung_up = False
        self._assembler = ReplyAssembler()

    async def command(self, line: str, reply_seconds: float | None = None) -> AgiReply:
        """Send one command and read its reply. Raises AgiHangup once the channel is gone."""
        if self.hung_up:
            raise AgiHangup("the channel has hung up")
        if "\n" in line or "\r" in line:
            raise ValueError("an AGI command is one line")
        try:
            async with asyncio.timeout(reply_seconds or self.command_timeout):
                self.writer.write(line.encode() + b"\n")
                await self.writer.drain()
                reply = await self._read_reply()
        except TimeoutError:
            raise AgiTimeout(f"no reply to {line.split(' ', 2)[:2]} in time") from None
        except (ConnectionError, OSError) as exc:
            raise AgiConnectionLost(f"connection lost: {exc}") from exc
        if reply.code == 511:
            self.hung_up = True
            raise AgiHangup("the channel has hung up (511)")
        if reply.code != 200:
            raise AgiCommandFailed(f"{line.split(' ', 1)[0]}: {reply.code} {reply.text}")
        return reply

    async def _read_reply(self) -> AgiReply:
        while True:
            reply = self._assembler.feed(await read_line(self.reader))
            if self._assembler.hangup_seen:
                self.hung_up = True
                raise AgiHangup("the channel has hung up")
            if reply is not None:
                return reply

    # ---- typed helpers

    async def answer(self) -> bool:
        return (await self.command("ANSWER")).result == "0"

    async def get_variable(self, name: str) -> str | None:
        reply = await self.command(f"GET VARIABLE {check_variable_name(name)}")
        return reply.data if reply.result == "1" else None

    async def set_variable(self, name: str, value: str) -> None:
        await self.command(f"SET VARIABLE {check_variable_name(name)} {quote(value)}")

    async def stream_file(self, name: str, escape_digits: str = "") -> str | None:
        """Play a prompt; returns the digit that interrupted it, if any."""
        if not name or any(c in name for c in ' "\\'):
            raise ValueError(f"not a sound file name: {name!r}")
        if escape_digits.strip("0123456789*#"):
            raise ValueError(f"escape digits are 0-9 * #: {escape_digits!r}")
        timeout = max(self.command_timeout, 120.0)  # a prompt can be long
        reply = await self.command(f"STREAM FILE {name} {quote(escape_digits)}", timeout)
        code = reply.result_int or 0
        return chr(code) if code > 0 else None

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> str | None:
        """Play a prompt and collect digits (ended by #, max_digits or the timeout).

        Returns the digits keyed (possibly empty), or None when Asterisk reports failure.
        """
        if not prompt or any(c in prompt for c in ' "\\'):
            raise ValueError(f"not a sound file name: {prompt!r}")
        if timeout_ms <= 0 or not 1 <= max_digits <= 64:
            raise ValueError("get_data needs a positive timeout and 1-64 digits")
        # Prompt, then up to max_digits inter-digit waits, plus slack for the round trip.
        budget = 120.0 + timeout_ms / 1000 * (max_digits + 1)
        reply = await self.command(f"GET DATA {prompt} {timeout_ms} {max_digits}", budget)
        if reply.result == "-1":
            return None
        return reply.result if KEYED.fullmatch(reply.result) else None

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.command(f"VERBOSE {quote(message)} {level}")

    async def hangup(self) -> None:
        await self.command("HANGUP")
