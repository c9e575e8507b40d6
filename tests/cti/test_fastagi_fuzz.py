"""Hypothesis against the FastAGI parsers, and against the live server with random bytes."""

from __future__ import annotations

import asyncio
import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti.agi_client import agi_environment, header_bytes, simulate_channel
from cti.agi_protocol import (
    AgiProtocolError,
    AgiReply,
    HeaderCollector,
    ReplyAssembler,
    parse_header_line,
    quote,
)
from cti.agi_session import AgiSession
from cti.fastagi import FastAgiServer

KEYS = st.from_regex(r"agi_[a-z0-9_]{1,20}", fullmatch=True)
# Header values are one line; res_agi strips nothing else.
VALUES = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]))
LINES = st.text(st.characters(blacklist_characters="\n", blacklist_categories=["Cs"]))


@given(LINES)
def test_header_lines_parse_or_raise_a_protocol_error(line: str) -> None:
    try:
        key, value = parse_header_line(line)
    except AgiProtocolError:
        return
    assert key.startswith("agi_") and value == value.strip()


@given(st.dictionaries(KEYS, VALUES, min_size=1, max_size=40))
def test_header_blocks_round_trip(values: dict[str, str]) -> None:
    collector = HeaderCollector()
    lines = header_bytes(values).decode().split("\n")
    done = False
    for line in lines:
        if collector.add(line):
            done = True
            break
    assert done
    assert collector.environment().values == {k: v.strip() for k, v in values.items()}


@given(st.lists(LINES, max_size=30))
def test_reply_assembler_never_fails_but_with_a_protocol_error(lines: list[str]) -> None:
    assembler = ReplyAssembler()
    for line in lines:
        try:
            reply = assembler.feed(line)
        except AgiProtocolError:
            return
        assert reply is None or isinstance(reply, AgiReply)


RESULTS = st.from_regex(r"-?[0-9*#]{0,6}", fullmatch=True)
DATA = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]))
EXTRAS = st.lists(
    st.tuples(
        st.from_regex(r"[a-z]{1,8}", fullmatch=True),
        st.from_regex(r"[0-9]{1,6}", fullmatch=True),
    ),
    max_size=3,
)


@given(RESULTS, st.none() | DATA, EXTRAS)
def test_200_replies_round_trip(
    result: str, data: str | None, extras: list[tuple[str, str]]
) -> None:
    line = f"200 result={result}"
    if data is not None:
        line += f" ({data})"
    line += "".join(f" {k}={v}" for k, v in extras)
    reply = ReplyAssembler().feed(line)
    assert reply is not None and reply.code == 200 and reply.result == result
    if data is not None and not extras:
        assert reply.data == data
    if data is None:
        assert reply.data is None and reply.extras == tuple(extras)


@given(st.lists(LINES.filter(lambda line: not line.startswith("520 ")), max_size=20))
def test_520_usage_is_one_reply_and_the_next_reply_is_intact(usage: list[str]) -> None:
    assembler = ReplyAssembler()
    lines = ["520-Invalid command syntax.  Proper usage follows:", *usage]
    for line in lines:
        assert assembler.feed(line) is None
    reply = assembler.feed("520 End of proper usage.")
    assert reply is not None and reply.code == 520
    assert reply.text.split("\n")[1:] == usage
    after = assembler.feed("200 result=1 (next)")
    assert after == AgiReply(200, "1", "next", (), "result=1 (next)")


def _asterisk_parse_args(text: str) -> list[str]:
    """res_agi.c parse_args(): quotes group, a backslash escapes the next character."""
    args: list[str] = []
    current, quoted, escaped, started = "", False, False, False
    for char in text:
        if escaped:
            current, escaped, started = current + char, False, True
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted, started = not quoted, True
        elif char in " \t" and not quoted:
            if started:
                args.append(current)
            current, started = "", False
        else:
            current, started = current + char, True
    if started:
        args.append(current)
    return args


@given(st.text(st.characters(blacklist_categories=["Cs"])))
def test_quoted_values_reach_asterisk_as_one_argument(value: str) -> None:
    line = f"SET VARIABLE NAME {quote(value)}"
    assert "\n" not in line and "\r" not in line
    expected = value.replace("\r", " ").replace("\n", " ").replace("\x00", "")
    assert _asterisk_parse_args(line) == ["SET", "VARIABLE", "NAME", expected]


async def _hit_server(payload: bytes) -> None:
    async def greet(session: AgiSession) -> None:
        await session.set_variable("SEEN", "yes")

    async with FastAgiServer("127.0.0.1", 0, {"greet": greet}, header_timeout=0.2) as agi:
        reader, writer = await asyncio.open_connection("127.0.0.1", agi.bound_port)
        with contextlib.suppress(ConnectionError):
            writer.write(payload)
            await writer.drain()
            async with asyncio.timeout(10):
                await reader.read()
        writer.close()
        channel = await simulate_channel("127.0.0.1", agi.bound_port, agi_environment("greet"))
        assert channel.variables == {"SEEN": "yes"}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=3000),
        st.lists(st.binary(max_size=60), max_size=60).map(b"\n".join),
        st.dictionaries(KEYS, VALUES, max_size=10).map(header_bytes).map(lambda b: b[:-1]),
    )
)
def test_random_bytes_never_break_the_server(payload: bytes) -> None:
    asyncio.run(_hit_server(payload))
