"""Pops are encoded in two parts: the 360, once per call when it is built, and the few pop
fields at ring time. What the agent's browser parses must be the same either way."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from cti.pops import CallContext, Pop


def _pop(payload: dict[str, Any], ring: str = "r1") -> Pop:
    return Pop(
        "pop-1",
        7,
        "pbx",
        "1700000000.1",
        ring,
        "ringing",
        "13800000000",
        "hotline",
        1700000000.5,
        payload,
    )


def _snapshot() -> dict[str, Any]:
    return {
        "match": "customer",
        "customer_360": {
            "customer": {
                "id": 42,
                "name": '陕西重汽物流"东区"',
                "since": datetime(2024, 5, 1, tzinfo=UTC),
            },
            "vehicles": [{"vin": "LZGJL4N45PX000001", "model": "X3000 牵引车"}],
            "recent_calls": [],
        },
    }


def test_encoded_text_parses_to_the_same_message_with_or_without_the_cache() -> None:
    payload = _snapshot()
    pop = _pop(payload)
    expected = json.loads(json.dumps(pop.message(), ensure_ascii=False, default=str))
    assert json.loads(pop.encoded()) == expected
    members = json.dumps(payload, ensure_ascii=False, default=str)[1:-1]
    assert json.loads(pop.encoded(members)) == expected
    assert "陕西重汽" in pop.encoded(members)  # sent as UTF-8, not \u escapes


async def test_the_context_encodes_its_360_once_and_never_serves_a_replaced_one() -> None:
    first = _snapshot()

    async def built(value: dict[str, Any]) -> dict[str, Any]:
        return value

    context = CallContext("13800000000", asyncio.create_task(built(first)))
    context.encode_when_built()
    await context.task
    await asyncio.sleep(0)  # done callbacks run on the next loop turn
    cached = context.members(first)
    assert cached is not None and context.members(first) is cached  # ring-all: one encoding

    # The caller keyed a VIN tail: a new 360 replaces the first. A ring that still carries
    # the first payload is not given the second's text, nor the other way round.
    second = {"match": "customer", "customer_360": {"customer": {"id": 43, "name": "新客户"}}}
    context.task = asyncio.create_task(built(second))
    context.encode_when_built()
    await context.task
    await asyncio.sleep(0)
    assert context.members(first) is None
    assert json.loads("{" + (context.members(second) or "") + "}") == second
    assert context.members({"match": "pending", "number": "13800000000"}) is None
