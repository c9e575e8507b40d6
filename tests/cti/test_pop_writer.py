"""Pop rows: a batch's inserts and updates keep each pop's order, receipts count once and
only for the pop's agent, and the payload stored is the pop as the agent's browser got it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from crm_core.db import Database
from crm_core.users import create_user
from cti.models import ScreenPop
from cti.pop_writer import PopWriter
from cti.pops import Pop, encode_members

AT = datetime(2026, 11, 25, 8, 30, tzinfo=UTC)


def _pop(pop_id: str, user_id: int) -> Pop:
    payload = {
        "match": "customer",
        "customer_360": {"customer": {"id": 7, "name": '陕西重汽"东区"'}, "recent_calls": []},
    }
    return Pop(
        pop_id, user_id, "pbx", "1.1", f"r-{pop_id}", "ringing", "139", "hotline", 1.5, payload
    )


def _receipt(pop: Pop, stage: str, at: datetime, user_id: int | None = None) -> dict[str, Any]:
    return {"pop_id": pop.id, "user_id": user_id or pop.user_id, "stage": stage, "at": at}


async def test_one_batch_keeps_each_pops_order(db: Database) -> None:
    zhang = (await create_user(db, {"username": "zhang", "display_name": "张三"})).id
    li = (await create_user(db, {"username": "li", "display_name": "李四"})).id
    first, second = _pop("pop-1", zhang), _pop("pop-2", li)
    writer = PopWriter(db)
    changes = [
        ("insert", first.row(first.encoded_pop(encode_members(first.payload)))),
        ("receipt", _receipt(first, "delivered", AT)),
        ("insert", second.row()),
        ("receipt", _receipt(first, "displayed", AT + timedelta(seconds=1))),
        ("receipt", _receipt(first, "displayed", AT + timedelta(seconds=9))),  # not the first
        ("receipt", _receipt(second, "delivered", AT, user_id=zhang)),  # not zhang's pop
        ("state", {"id": first.id, "state": "connected", "closed_at": None}),
        ("state", {"id": second.id, "state": "withdrawn", "closed_at": AT}),
        ("state", {"id": first.id, "state": "ended", "closed_at": AT + timedelta(minutes=2)}),
    ]
    for kind, data in changes:
        writer.submit(kind, data)  # queued together: the writer takes them as one batch
    writer.start()
    await writer.stop()
    async with db.transaction() as session:
        rows = {p.id: p for p in (await session.scalars(select(ScreenPop))).all()}
    one, two = rows["pop-1"], rows["pop-2"]
    assert (one.state, one.closed_at, one.agent_id) == ("ended", AT + timedelta(minutes=2), zhang)
    assert (one.delivered_at, one.displayed_at) == (AT, AT + timedelta(seconds=1))
    assert (two.state, two.closed_at, two.delivered_at) == ("withdrawn", AT, None)
    for pop, row in ((first, one), (second, two)):
        assert row.payload == json.loads(json.dumps(pop.message()["pop"]))
        assert row.payload["customer_360"]["customer"]["name"] == '陕西重汽"东区"'
        assert (row.server, row.linkedid, row.ring_id) == ("pbx", "1.1", f"r-{pop.id}")
