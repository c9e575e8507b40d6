"""The FastAGI wire format, as pure functions: no sockets here, so the parsers can be fuzzed.

Asterisk opens the connection and sends an ``agi_*: value`` block ended by a blank line. Then
we send one command per line and read one reply per command:

- ``200 result=X [(data)] [key=value ...]`` on success (``data`` may hold spaces and ')');
- ``510 Invalid or unknown command`` and ``511 Command Not Permitted on a dead channel...``;
- ``520-Invalid command syntax.  Proper usage follows:``, the usage text over several lines,
  then ``520 End of proper usage.``: one reply, whatever the number of lines;
- ``HANGUP`` on a line of its own whenever the channel hangs up (AGISIGHUP), which can come
  before any reply;
- ``1xx`` provisional lines, which say nothing final and are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import parse_qsl, urlsplit

from crm_core.errors import HotlineError

MAX_LINE_BYTES = 4096
MAX_HEADER_LINES = 128
MAX_HEADER_BYTES = 16384
MAX_USAGE_LINES = 200

HEADER_KEY = re.compile(r"^agi_[a-z0-9_]{1,60}$")
_VALUE_200 = re.compile(
    r"^result=(?P<result>\S*)(?: \((?P<data>.*)\))?(?P<extras>(?: [A-Za-z_]\w*=\S*)*) *$"
)
_EXTRA = re.compile(r"([A-Za-z_]\w*)=(\S*)")
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\([A-Za-z0-9_,-]*\))?$")


class AgiError(HotlineError):
    """Anything that ends or breaks one AGI conversation. Never reaches a web client."""

    status: ClassVar[int] = 502
    error_id: ClassVar[str] = "agi_error"


class AgiProtocolError(AgiError):
    """Bytes that are not FastAGI: a bad header line, a reply we cannot parse, a size limit."""

    error_id: ClassVar[str] = "agi_protocol_error"


class AgiTimeout(AgiError):
    error_id: ClassVar[str] = "agi_timeout"


class AgiCommandFailed(AgiError):
    """510 (unknown command) or 520 (bad usage): our bug, not the caller's."""

    error_id: ClassVar[str] = "agi_command_failed"


class AgiEnded(AgiError):
    """The conversation is over from Asterisk's side; the handler should simply stop."""

    error_id: ClassVar[str] = "agi_ended"


class AgiHangup(AgiEnded):
    """The channel hung up: a ``HANGUP`` line or a 511 reply."""

    error_id: ClassVar[str] = "agi_hangup"


class AgiConnectionLost(AgiEnded):
    """Asterisk closed the socket (AGIEXITONHANGUP, an absolute timeout, a restart)."""

    error_id: ClassVar[str] = "agi_connection_lost"


@dataclass(frozen=True)
class AgiReply:
    code: int
    result: str = ""
    data: str | None = None
    extras: tuple[tuple[str, str], ...] = ()
    text: str = ""

    @property
    def result_int(self) -> int | None:
        try:
            return int(self.result)
        except ValueError:
            return None

    def extra(self, key: str) -> str | None:
        return dict(self.extras).get(key)


def decode_line(raw: bytes) -> str:
    """One protocol line as text; lines are whole, so a bad byte is replaced, not fatal."""
    return raw.decode("utf-8", errors="replace").rstrip("\r\n")


def parse_header_line(line: str) -> tuple[str, str]:
    """``agi_callerid: 139...`` as (key, value); anything else is a protocol error."""
    key, sep, value = line.partition(":")
    if not sep or not HEADER_KEY.match(key):
        raise AgiProtocolError(f"not an AGI header line: {line[:80]!r}")
    return key, value.strip()


def parse_200(rest: str) -> AgiReply:
    match = _VALUE_200.match(rest)
    if match is None:
        raise AgiProtocolError(f"unparsable 200 reply: {rest[:80]!r}")
    extras = tuple(_EXTRA.findall(match["extras"]))
    return AgiReply(200, match["result"], match["data"], extras, rest)


@dataclass
class ReplyAssembler:
    """Feeds reply lines one by one; returns an AgiReply once one is complete.

    Keeps state only for the 520 multi-line usage text, so a long usage reply is one reply
    and never leaves lines behind to be taken for the answers to later commands.
    """

    hangup_seen: bool = False
    _usage: list[str] | None = field(default=None, repr=False)

    def feed(self, line: str) -> AgiReply | None:
        if self._usage is not None:
            return self._feed_usage(line)
        if line.strip() == "HANGUP":
            self.hangup_seen = True
            return None
        code, rest = line[:3], line[4:]
        if len(line) < 3 or not code.isdigit():
            raise AgiProtocolError(f"unparsable AGI reply: {line[:80]!r}")
        if line.startswith("520-"):
            self._usage = [rest]
            return None
        if len(line) > 3 and line[3] != " ":
            raise AgiProtocolError(f"unparsable AGI reply: {line[:80]!r}")
        if code.startswith("1"):
            return None  # provisional ("100 result=0 Trying...")
        if code == "200":
            return parse_200(rest)
        return AgiReply(int(code), text=rest)

    def _feed_usage(self, line: str) -> AgiReply | None:
        assert self._usage is not None
        if line.startswith("520 "):
            usage = "\n".join(self._usage)
            self._usage = None
            return AgiReply(520, text=usage)
        if len(self._usage) >= MAX_USAGE_LINES:
            raise AgiProtocolError("520 usage reply is too long")
        self._usage.append(line)
        return None


def quote(value: str) -> str:
    """One command argument, quoted as res_agi's parser reads it (backslash escapes)."""
    clean = value.replace("\r", " ").replace("\n", " ").replace("\x00", "")
    return '"' + clean.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check_variable_name(name: str) -> str:
    if not VARIABLE_NAME.match(name):
        raise ValueError(f"not a channel variable or function name: {name!r}")
    return name


@dataclass(frozen=True)
class AgiEnvironment:
    """The ``agi_*`` block Asterisk sends first, with typed views of the fields we use."""

    values: Mapping[str, str]

    def get(self, key: str, default: str = "") -> str:
        return self.values.get(key, default)

    @property
    def script(self) -> str:
        """The handler name: ``lookup`` for agi://host:port/lookup?x=1."""
        raw = self.get("agi_network_script") or urlsplit(self.get("agi_request")).path
        return raw.split("?", 1)[0].strip("/")

    @property
    def query(self) -> dict[str, str]:
        raw = self.get("agi_network_script") or self.get("agi_request")
        return dict(parse_qsl(raw.split("?", 1)[1])) if "?" in raw else {}

    @property
    def uniqueid(self) -> str:
        return self.get("agi_uniqueid")

    @property
    def channel(self) -> str:
        return self.get("agi_channel")

    @property
    def callerid(self) -> str:
        value = self.get("agi_callerid")
        return "" if value == "unknown" else value

    @property
    def args(self) -> list[str]:
        found: list[str] = []
        while f"agi_arg_{len(found) + 1}" in self.values:
            found.append(self.values[f"agi_arg_{len(found) + 1}"])
        return found


@dataclass
class HeaderCollector:
    """Collects header lines under size limits; ``add`` returns True at the blank line."""

    values: dict[str, str] = field(default_factory=dict)
    lines: int = 0
    size: int = 0

    def add(self, line: str) -> bool:
        self.lines += 1
        self.size += len(line) + 1
        if self.lines > MAX_HEADER_LINES or self.size > MAX_HEADER_BYTES:
            raise AgiProtocolError("AGI header block is too large")
        if not line.strip():
            if not self.values:
                raise AgiProtocolError("empty AGI header block")
            return True
        key, value = parse_header_line(line)
        self.values.setdefault(key, value)
        return False

    def environment(self) -> AgiEnvironment:
        return AgiEnvironment(dict(self.values))
