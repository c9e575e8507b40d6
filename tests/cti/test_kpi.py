"""The KPI formulas of docs/kpis.md against 76 hand-built calls, figures worked out by hand.

The day is 2024-05-01 Beijing time (UTC+8). Queue `hotline` keeps the defaults (service
level 20 s, short abandon 5 s); `vip` is set to 10 s / 3 s, so a call judged with the wrong
queue's thresholds changes the figures. Agent A is in region 华东, B in 华北.

| set | queue | Beijing time | n | outcome (wait s) | talk/hold/wrap-up s | extra |
|---|---|---|---|---|---|---|
| a1 | hotline | 05-01 09h | 10 | answered by A (5)  | 100/10/20 | score 5, consultation |
| a2 | hotline | 05-01 09h | 10 | answered by A (30) | 100/10/20 | 5x score 3; 2 consultation, |
|    |         |           |    |                    |           | 8 service_request |
| b1 | hotline | 05-01 14h | 10 | answered by B (15) | 200/0/40 | 5x score 4, complaint |
| y  | hotline | 05-01 00:10 | 1 | answered by B (0) | 40/0/0 | (just after the day boundary) |
| x  | hotline | 04-30 23:30 | 1 | answered by B (0) | 40/0/0 | outside the range: not counted |
| u1 | hotline | 05-01 10h | 8 | abandoned (60) | | |
| u2 | hotline | 05-01 10h | 4 | abandoned (2) | | short abandons (< 5 s) |
| u3 | hotline | 05-01 10h | 2 | missed (40) | | rang, caller hung up: abandoned |
| u4 | hotline | 05-01 10h | 3 | abandoned (100) | | routed=callback: callback exits |
| u5 | hotline | 05-01 10h | 2 | abandoned (120) | | voicemail_at set: voicemails |
| u6 | hotline | 05-01 10h | 2 | abandoned (0) | | routed=closed: not counted |
| v1 | vip | 05-01 11h | 6 | answered by A (8)  | 60/0/0 | |
| v2 | vip | 05-01 11h | 4 | answered by A (12) | 60/0/0 | over vip's 10 s, under 20 s |
| v3 | vip | 05-01 11h | 2 | abandoned (2.5) | | short for vip (< 3 s) |
| v4 | vip | 05-01 11h | 2 | abandoned (4) | | abandoned for vip (>= 3 s) |
| o  | -  | 05-01 09h | 3 | outbound by A | | not counted |
| d2 | hotline | 05-02 16h | 5 | answered by B (0) | 50/0/10 | |
| d3 | hotline | 05-02 16h | 1 | abandoned (10) | | |

Callback jobs (queue_callbacks, requested 05-01 10h): hotline 3 (2 done by A, 1 failed),
vip 1 (still pending).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from crm_core.db import Database
from crm_core.errors import ValidationError
from crm_core.models import CallQueue
from crm_core.users import create_user
from cti.kpi import QueueToday, today_by_queue
from cti.kpi_report import KpiFilter, report
from cti.models import Call, QueueCallback

BEIJING = timedelta(hours=8)


def beijing(day: int, hour: int, minute: int = 0, month: int = 5) -> datetime:
    return datetime(2024, month, day, hour, minute, tzinfo=UTC) - BEIJING


MAY_1_2 = KpiFilter(start=beijing(1, 0), end=beijing(3, 0))


def call_set(at: datetime, n: int, **values: Any) -> list[dict[str, Any]]:
    return [{"entered_at": at + timedelta(seconds=10 * i), **values} for i in range(n)]


def answered(agent: int, wait: float, talk: float, hold: float, wrapup: float) -> dict[str, Any]:
    return {
        "agent_id": agent,
        "outcome": "answered",
        "wait_seconds": wait,
        "talk_seconds": talk,
        "hold_seconds": hold,
        "wrapup_seconds": wrapup,
    }


def gave_up(wait: float, outcome: str = "abandoned", **extra: Any) -> dict[str, Any]:
    return {"outcome": outcome, "wait_seconds": wait, **extra}


def fixture_calls(a: int, b: int) -> list[dict[str, Any]]:
    hot, vip = {"queue": "hotline"}, {"queue": "vip"}
    a2 = call_set(beijing(1, 9, 30), 10, **hot, **answered(a, 30, 100, 10, 20))
    for i, row in enumerate(a2):
        row["survey_score"] = 3 if i < 5 else None
        row["disposition"] = "consultation" if i < 2 else "service_request"
    b1 = call_set(beijing(1, 14), 10, **hot, **answered(b, 15, 200, 0, 40))
    for i, row in enumerate(b1):
        row["survey_score"] = 4 if i < 5 else None
    voicemail = gave_up(120, voicemail_at=beijing(1, 10, 40))
    return [
        *call_set(
            beijing(1, 9),
            10,
            **hot,
            **answered(a, 5, 100, 10, 20),
            survey_score=5,
            disposition="consultation",
        ),
        *a2,
        *[{**row, "disposition": "complaint"} for row in b1],
        *call_set(beijing(1, 0, 10), 1, **hot, **answered(b, 0, 40, 0, 0)),
        *call_set(beijing(30, 23, 30, month=4), 1, **hot, **answered(b, 0, 40, 0, 0)),
        *call_set(beijing(1, 10), 8, **hot, **gave_up(60)),
        *call_set(beijing(1, 10, 10), 4, **hot, **gave_up(2)),
        *call_set(beijing(1, 10, 20), 2, **hot, **gave_up(40, "missed")),
        *call_set(beijing(1, 10, 30), 3, **hot, **gave_up(100, routed="callback")),
        *call_set(beijing(1, 10, 40), 2, **hot, **voicemail),
        *call_set(beijing(1, 10, 50), 2, **hot, **gave_up(0, routed="closed")),
        *call_set(beijing(1, 11), 6, **vip, **answered(a, 8, 60, 0, 0)),
        *call_set(beijing(1, 11, 10), 4, **vip, **answered(a, 12, 60, 0, 0)),
        *call_set(beijing(1, 11, 20), 2, **vip, **gave_up(2.5)),
        *call_set(beijing(1, 11, 30), 2, **vip, **gave_up(4)),
        *call_set(beijing(1, 9, 50), 3, direction="outbound", **answered(a, 0, 30, 0, 0)),
        *call_set(beijing(2, 16), 5, **hot, **answered(b, 0, 50, 0, 10)),
        *call_set(beijing(2, 16, 10), 1, **hot, **gave_up(10)),
    ]


def callback_jobs(a: int) -> list[QueueCallback]:
    at = beijing(1, 10, 30)
    states = [("hotline", "done", a), ("hotline", "done", a), ("hotline", "failed", None)]
    states.append(("vip", "pending", None))
    return [
        QueueCallback(
            server="pbx",
            linkedid=f"CB{i}",
            source="queue",
            queue=queue,
            number="139",
            place_at=at,
            requested_at=at,
            state=state,
            agent_id=agent,
        )
        for i, (queue, state, agent) in enumerate(states)
    ]


@pytest.fixture
async def people(db: Database) -> dict[str, int]:
    a = await create_user(db, {"username": "a1", "display_name": "甲", "region": "华东"})
    b = await create_user(db, {"username": "b1", "display_name": "乙", "region": "华北"})
    rows = fixture_calls(a.id, b.id)
    assert len(rows) == 76
    async with db.transaction() as session:
        await session.execute(
            update(CallQueue)
            .where(CallQueue.name == "vip")
            .values(service_level_seconds=10, short_abandon_seconds=3)
        )
        for n, values in enumerate(rows):
            fields = {"server": "pbx", "linkedid": f"L{n}", "direction": "inbound", **values}
            session.add(Call(status="ended", **fields))
        session.add_all(callback_jobs(a.id))
    return {"a": a.id, "b": b.id}


def figures_of(rows: list[Any]) -> dict[str, dict[str, Any]]:
    return {row.key: row.figures() for row in rows}


async def test_by_queue_matches_the_hand_computed_figures(
    db: Database, people: dict[str, int]
) -> None:
    result = await report(db, "queue", MAY_1_2)
    got = figures_of(result.rows)
    assert list(got) == ["hotline", "vip"]
    hot = got["hotline"]
    assert hot["label"] == "400热线"
    # answered a1 10 + a2 10 + b1 10 + y 1 + d2 5 = 36 (x is before the range, u6 closed)
    assert hot["answered"] == 36
    assert hot["short_abandoned"] == 4  # u2: 2 s < 5 s
    assert hot["abandoned"] == 11  # u1 8 + u3 2 (missed counts) + d3 1
    assert (hot["callback_exits"], hot["voicemails"]) == (3, 2)  # u4, u5: not abandoned
    assert hot["offered"] == 52  # 36 + 11 + 3 + 2 (short abandons and closed left out)
    assert hot["answered_within_sl"] == 26  # a1 10 (5 s) + b1 10 (15 s) + y 1 + d2 5
    assert hot["service_level"] == 50.0  # 26 / 52
    assert hot["abandon_rate"] == 21.2  # 11 / 52 = 21.15 %
    assert hot["answer_rate"] == 69.2  # 36 / 52 = 69.23 %
    assert hot["asa"] == 13.89  # (10*5 + 10*30 + 10*15 + 0 + 5*0) / 36 = 500 / 36
    # AHT: (a1 10*130 + a2 10*130 + b1 10*240 + y 40 + d2 5*60) / 36 = 5340 / 36
    assert hot["aht"] == 148.33
    assert (hot["talk"], hot["hold"], hot["wrapup"]) == (4290.0, 200.0, 850.0)
    assert hot["longest_wait"] == 120.0  # u5, the voicemails
    assert hot["average_abandon_time"] == 51.82  # (8*60 + 2*40 + 10) / 11 = 570 / 11
    assert (hot["surveyed"], hot["survey_average"]) == (20, 4.25)  # (10*5 + 5*3 + 5*4) / 20
    assert hot["dispositions"] == {"consultation": 12, "service_request": 8, "complaint": 10}
    assert (hot["callbacks_requested"], hot["callbacks_completed"]) == (3, 2)


async def test_each_queue_uses_its_own_thresholds(db: Database, people: dict[str, int]) -> None:
    result = await report(db, "queue", MAY_1_2)
    vip = figures_of(result.rows)["vip"]
    # vip: SL 10 s, short abandon 3 s. v3 (2.5 s) is short, v4 (4 s) abandoned.
    assert (vip["offered"], vip["answered"], vip["abandoned"]) == (12, 10, 2)
    assert vip["short_abandoned"] == 2
    assert vip["answered_within_sl"] == 6  # v1 (8 s); v2 (12 s) is over 10 s
    assert vip["service_level"] == 50.0  # 6 / 12
    assert vip["abandon_rate"] == 16.7  # 2 / 12
    assert vip["asa"] == 9.6  # (6*8 + 4*12) / 10
    assert vip["aht"] == 60.0
    assert vip["longest_wait"] == 12.0
    assert vip["survey_average"] is None
    assert (vip["callbacks_requested"], vip["callbacks_completed"]) == (1, 0)
    total = result.total.figures()
    assert (total["offered"], total["answered"], total["abandoned"]) == (64, 46, 13)
    assert total["service_level"] == 50.0  # (26 + 6) / 64
    assert total["abandon_rate"] == 20.3  # 13 / 64 = 20.31 %
    assert total["asa"] == 12.96  # (500 + 96) / 46
    assert total["longest_wait"] == 120.0
    assert total["callbacks_requested"] == 4


async def test_by_agent(db: Database, people: dict[str, int]) -> None:
    a, b = str(people["a"]), str(people["b"])
    got = figures_of((await report(db, "agent", MAY_1_2)).rows)
    assert list(got) == [*sorted([a, b], key=int), ""]
    assert (got[a]["label"], got[b]["label"]) == ("甲", "乙")
    # A: a1 + a2 + v1 + v2 = 30 answered; within: a1 10 + v1 6 (v2's 12 s is over vip's 10)
    assert (got[a]["answered"], got[a]["answered_within_sl"]) == (30, 16)
    assert got[a]["service_level"] == 53.3  # 16 / 30
    assert got[a]["asa"] == 14.87  # (50 + 300 + 48 + 48) / 30 = 446 / 30
    assert got[a]["aht"] == 106.67  # (1300 + 1300 + 600) / 30 = 3200 / 30
    assert got[a]["survey_average"] == 4.33  # (50 + 15) / 15
    assert got[a]["dispositions"] == {"consultation": 12, "service_request": 8}
    assert got[a]["callbacks_completed"] == 2
    # B: b1 10 + y 1 + d2 5 = 16, all within 20 s
    assert (got[b]["answered"], got[b]["service_level"]) == (16, 100.0)
    assert got[b]["asa"] == pytest.approx(9.375, abs=0.006)  # 150 / 16
    assert got[b]["aht"] == 171.25  # (2400 + 40 + 300) / 16
    # No agent: what nobody answered. 11 + 3 + 2 (hotline) + 2 (vip)
    assert (got[""]["offered"], got[""]["answered"], got[""]["abandoned"]) == (18, 0, 13)
    assert got[""]["short_abandoned"] == 6


async def test_by_day_and_hour_in_beijing_time(db: Database, people: dict[str, int]) -> None:
    days = figures_of((await report(db, "day", MAY_1_2)).rows)
    assert list(days) == ["2024-05-01", "2024-05-02"]
    assert (days["2024-05-01"]["offered"], days["2024-05-01"]["answered"]) == (58, 41)
    assert days["2024-05-02"]["service_level"] == 83.3  # d2 5 within / (5 + d3 1)
    hours = figures_of((await report(db, "hour", MAY_1_2)).rows)
    assert list(hours) == ["00", "09", "10", "11", "14", "16"]
    assert hours["00"]["answered"] == 1  # y, 00:10 Beijing = 16:10 UTC the day before
    assert hours["09"]["offered"] == 20  # a1 + a2; the outbound calls are not offered
    assert hours["10"]["offered"] == 15  # u1 8 + u3 2 + u4 3 + u5 2
    assert hours["10"]["label"] == "10:00"
    assert hours["16"]["abandoned"] == 1


async def test_filters(db: Database, people: dict[str, int]) -> None:
    north = KpiFilter(start=MAY_1_2.start, end=MAY_1_2.end, region="华北")
    got = figures_of((await report(db, "queue", north)).rows)
    # B's calls and the calls nobody took
    assert (got["hotline"]["offered"], got["hotline"]["answered"]) == (32, 16)
    assert got["hotline"]["service_level"] == 50.0  # 16 / 32
    assert (got["vip"]["offered"], got["vip"]["service_level"]) == (2, 0.0)
    assert got["hotline"]["callbacks_requested"] == 1  # the failed job; A's are not 华北
    only_a = KpiFilter(start=MAY_1_2.start, end=MAY_1_2.end, agent_id=people["a"])
    got = figures_of((await report(db, "day", only_a)).rows)
    assert list(got) == ["2024-05-01"]
    assert got["2024-05-01"]["answered"] == 30
    vip = KpiFilter(start=MAY_1_2.start, end=MAY_1_2.end, queue="vip")
    got = figures_of((await report(db, "queue", vip)).rows)
    assert list(got) == ["vip"]
    day_one = KpiFilter(start=beijing(1, 0), end=beijing(2, 0))
    total = (await report(db, "queue", day_one)).total.figures()
    assert total["offered"] == 58


async def test_bad_requests_are_refused(db: Database) -> None:
    with pytest.raises(ValidationError):
        await report(db, "week", MAY_1_2)
    with pytest.raises(ValidationError):
        await report(db, "queue", KpiFilter(start=MAY_1_2.end, end=MAY_1_2.start))


async def test_today_by_queue(db: Database, people: dict[str, int]) -> None:
    today = await today_by_queue(db, beijing(1, 12))
    # Since 00:00 Beijing: y, a1, a2, u1-u6, v1-v4 (b1 at 14h and the 2nd are later).
    # hotline: answered 21, abandoned 10, + 3 callback exits + 2 voicemails = 36 offered;
    # within 20 s: a1 10 + y 1 = 11; ASA (10*5 + 10*30 + 0) / 21 = 350 / 21.
    assert today == [
        QueueToday("hotline", 36, 21, 10, 30.6, 27.8, 120.0, 16.67),
        QueueToday("vip", 12, 10, 2, 50.0, 16.7, 12.0, 9.6),
    ]
    assert await today_by_queue(db, beijing(3, 12)) == []
