"""Opening hours: the weekly format, Chinese holidays and adjusted working days, closures."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crm_core.business_hours import Closure, describe, parse_week, state_at
from crm_core.errors import ValidationError

HOURS = "mon-fri 09:00-17:00; sat 09:00-12:00"


def beijing(text: str) -> datetime:
    return datetime.fromisoformat(text + "+08:00")


@pytest.mark.parametrize(
    ("moment", "open_", "reason"),
    [
        ("2026-12-07T09:00", True, "open"),  # Monday, opening minute
        ("2026-12-07T08:59", False, "hours"),
        ("2026-12-07T17:00", False, "hours"),  # closing minute is closed
        ("2026-12-05T11:59", True, "open"),  # an ordinary Saturday morning
        ("2026-12-06T10:00", False, "hours"),  # Sunday: no hours
        ("2026-10-01T10:00", False, "holiday"),  # National Day, a Thursday
        ("2026-10-10T15:00", True, "open"),  # Saturday made a working day: Monday's hours
    ],
)
def test_hours_holidays_and_adjusted_working_days(moment: str, open_: bool, reason: str) -> None:
    state = state_at(HOURS, "cn", [], beijing(moment))
    assert (state.open, state.reason) == (open_, reason)


def test_without_the_calendar_a_holiday_is_a_plain_weekday() -> None:
    assert state_at(HOURS, "none", [], beijing("2026-10-01T10:00")).open


def test_the_holiday_is_named() -> None:
    assert state_at(None, "cn", [], beijing("2026-10-01T10:00")).detail == "National Day"


def test_a_closure_wins_over_open_hours_and_ends_on_time() -> None:
    typhoon = Closure(beijing("2026-09-15T00:00"), beijing("2026-09-16T00:00"), "台风停工")
    inside = state_at(HOURS, "cn", [typhoon], beijing("2026-09-15T10:00"))
    assert (inside.open, inside.reason, inside.detail) == (False, "closure", "台风停工")
    assert state_at(HOURS, "cn", [typhoon], beijing("2026-09-16T10:00")).open


def test_times_are_beijing_whatever_the_input_zone() -> None:
    # 01:30 UTC is 09:30 in Beijing: open.
    assert state_at(HOURS, "none", [], datetime(2026, 12, 7, 1, 30, tzinfo=UTC)).open


def test_empty_hours_are_always_open_but_holidays_still_close() -> None:
    assert state_at("", "cn", [], beijing("2026-12-06T03:00")).open
    assert not state_at("", "cn", [], beijing("2026-10-02T03:00")).open


def test_several_spans_and_describe_in_mandarin() -> None:
    week = parse_week("mon-fri 08:30-12:00,13:00-17:30; sat,sun 09:00-12:00")
    assert week is not None and week[0] == [(510, 720), (780, 1050)]
    assert describe(HOURS) == "周一至周五9点至17点；周六9点至12点"
    assert describe(None) == "全天二十四小时"


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("mon-fri", "needs a time span"),
        ("moon 09:00-17:00", "'moon'"),
        ("fri-mon 09:00-17:00", "backwards"),
        ("mon 17:00-09:00", "'17:00-09:00'"),
        ("mon 9-17", "'9-17'"),
        ("mon 09:00-24:30", "'09:00-24:30'"),
    ],
)
def test_bad_hours_name_the_part_that_is_wrong(text: str, part: str) -> None:
    with pytest.raises(ValidationError, match=part):
        parse_week(text)
