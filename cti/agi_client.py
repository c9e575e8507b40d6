"""Asterisk's side of FastAGI, simulated: for tests, benches and a smoke check of a server.

`simulate_channel` connects like res_agi does, sends the agi_* block and then answers every
command the way a live channel would: variables are kept, GET DATA returns the next keyed
digits, prompts are "played" and listed. Nothing here is used on the call path.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

_SET = re.compile(r'^SET VARIABLE (\S+) "((?:[^"\\]|\\.)*)"$')
_UNESCAPE = re.compile(r"\\(.)")


def agi_environment(
    script: str,
    *,
    uniqueid: str = "1700000000.1",
    callerid: str = "unknown",
    channel: str = "PJSIP/carrier-00000001",
    args: Iterable[str] = (),
    port: int = 4573,
) -> dict[str, str]:
    """The header block res_agi sends for AGI(agi://127.0.0.1:port/script,args...)."""
    env = {
        "agi_network": "yes",
        "agi_network_script": script,
        "agi_request": f"agi://127.0.0.1:{port}/{script}",
        "agi_channel": channel,
        "agi_language": "zh",
        "agi_type": "PJSIP",
        "agi_uniqueid": uniqueid,
        "agi_version": "22.0.0",
        "agi_callerid": callerid,
        "agi_calleridname": callerid,
        "agi_callingpres": "0",
        "agi_context": "from-carrier",
        "agi_extension": "4008001234",
        "agi_priority": "3",
        "agi_enhanced": "0.0",
        "agi_accountcode": "",
        "agi_threadid": "140000000000000",
    }
    for number, value in enumerate(args, start=1):
        env[f"agi_arg_{number}"] = value
    return env


def header_bytes(env: Mapping[str, str]) -> bytes:
    return "".join(f"{key}: {value}\n" for key, value in env.items()).encode() + b"\n"


@dataclass
class SimulatedChannel:
    """What the server did to the channel: variables set, prompts played, every command."""

    variables: dict[str, str] = field(default_factory=dict)
    played: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    keyed: list[str] = field(default_factory=list)
    closed_by_server: bool = False

    def answer(self, command: str) -> str:
        self.commands.append(command)
        words = command.split(" ")
        if command.startswith("SET VARIABLE"):
            match = _SET.match(command)
            if match is None:
                return "520 Invalid command syntax.  Proper usage not available."
            self.variables[match[1]] = _UNESCAPE.sub(r"\1", match[2])
            return "200 result=1"
        if command.startswith("GET VARIABLE") and len(words) == 3:
            value = self.variables.get(words[2])
            return "200 result=0" if value is None else f"200 result=1 ({value})"
        if command.startswith("GET DATA") and len(words) >= 3:
            self.played.append(words[2])
            digits = self.keyed.pop(0) if self.keyed else ""
            return f"200 result={digits}" + ("" if digits else " (timeout)")
        if command.startswith("STREAM FILE") and len(words) >= 3:
            self.played.append(words[2])
            return "200 result=0 endpos=8000"
        if command in ("ANSWER", "HANGUP") or command.startswith("VERBOSE"):
            return "200 result=0" if command == "ANSWER" else "200 result=1"
        return "510 Invalid or unknown command"


async def simulate_channel(
    host: str,
    port: int,
    env: Mapping[str, str],
    *,
    keyed: Iterable[str] = (),
    variables: Mapping[str, str] | None = None,
    seconds: float = 10.0,
) -> SimulatedChannel:
    """Run one AGI conversation to its end (the server closes the connection)."""
    channel = SimulatedChannel(variables=dict(variables or {}), keyed=list(keyed))
    reader, writer = await asyncio.open_connection(host, port)
    try:
        async with asyncio.timeout(seconds):
            writer.write(header_bytes(env))
            await writer.drain()
            while line := await reader.readline():
                reply = channel.answer(line.decode().rstrip("\n"))
                writer.write(reply.encode() + b"\n")
                await writer.drain()
        channel.closed_by_server = True
    finally:
        writer.close()
    return channel
