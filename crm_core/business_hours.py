"""Opening hours of a queue: weekly hours, Chinese public holidays and adjusted working days
(调休, from the maintained `chinese-calendar` tables), and ad-hoc closures an admin adds.

The weekly hours are one line an admin can type and read back::

    mon-fri 08:30-17:30; sat 09:00-12:00

Days are mon tue wed thu fri sat sun, as single days, ranges or comma lists; a day may have
several spans (``mon 08:00-12:00,13:00-17:00``); ``24:00`` ends a day. Empty hours mean open
around the clock (holidays and closures still apply when a calendar is chosen).
An adjusted working weekend day (a Saturday the State Council made a working day) keeps
Monday's hours: it stands in for a weekday, and Monday is the plain weekday every schedule has.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import chinese_calendar

from crm_core.errors import ValidationError

log = logging.getLogger(__name__)

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
CALENDARS = ("cn", "none")
SPAN = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
Span = tuple[int, int]  # minutes since midnight, [start, end)
Week = dict[int, list[Span]]


@dataclass(frozen=True)
class Closure:
    starts_at: datetime
    ends_at: datetime
    reason: str


@dataclass(frozen=True)
class OpenState:
    open: bool
    reason: str  # "open", "hours" (outside the weekly hours), "holiday", "closure"
    detail: str = ""  # the holiday's or the closure's name


def _days(text: str) -> list[int]:
    found: list[int] = []
    for part in text.split(","):
        ends = part.strip().split("-")
        if len(ends) > 2 or any(e not in DAYS for e in ends):
            raise ValidationError(
                f"hours: {part.strip()!r} is not a day or day range (mon ... sun)", field="hours"
            )
        first, last = DAYS.index(ends[0]), DAYS.index(ends[-1])
        if last < first:
            raise ValidationError(f"hours: {part.strip()!r} runs backwards", field="hours")
        found += range(first, last + 1)
    return found


def _span(text: str) -> Span:
    match = SPAN.match(text.strip())
    if match is None:
        raise ValidationError(f"hours: {text.strip()!r} is not HH:MM-HH:MM", field="hours")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if m1 > 59 or m2 > 59 or start >= 24 * 60 or end > 24 * 60 or end <= start:
        raise ValidationError(f"hours: {text.strip()!r} is not a span within a day", field="hours")
    return start, end


def parse_week(text: str | None) -> Week | None:
    """The weekly hours, or None for "always open". Raises ValidationError naming the part."""
    if text is None or not text.strip():
        return None
    week: Week = {}
    for rule in text.lower().split(";"):
        if not rule.strip():
            continue
        days, _, spans = rule.strip().partition(" ")
        if not spans.strip():
            raise ValidationError(f"hours: {rule.strip()!r} needs a time span", field="hours")
        parsed = [_span(s) for s in spans.split(",")]
        for day in _days(days):
            week.setdefault(day, []).extend(parsed)
    return week


def _clock(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    return f"{hours}点" + (f"{rest}分" if rest else "")


def describe(text: str | None) -> str:
    """The hours in Mandarin, as the closed-hours prompt speaks them."""
    week = parse_week(text)
    if week is None:
        return "全天二十四小时"
    groups: list[tuple[list[int], list[Span]]] = []
    for day in range(7):
        spans = sorted(week.get(day, []))
        if spans and groups and groups[-1][1] == spans and groups[-1][0][-1] == day - 1:
            groups[-1][0].append(day)
        elif spans:
            groups.append(([day], spans))
    parts = []
    for days, spans in groups:
        label = DAY_NAMES_ZH[days[0]]
        if len(days) > 1:
            label += "至" + DAY_NAMES_ZH[days[-1]]
        times = "，".join(f"{_clock(a)}至{_clock(b)}" for a, b in spans)
        parts.append(label + times)
    return "；".join(parts)


def _holiday(day: date) -> tuple[str, str] | None:
    """("holiday", name) on a statutory holiday, ("workday", "") on an adjusted working
    weekend day, None otherwise or when the calendar has no data for that year."""
    try:
        is_holiday, name = chinese_calendar.get_holiday_detail(day)
        workday = chinese_calendar.is_workday(day)
    except NotImplementedError:
        log.warning("chinese-calendar has no data for %s: weekly hours only", day.year)
        return None
    if is_holiday and name is not None:
        return "holiday", str(name)
    if workday and day.weekday() >= 5:
        return "workday", ""
    return None


def state_at(
    hours: str | None,
    calendar: str,
    closures: Iterable[Closure],
    now: datetime,
) -> OpenState:
    """Is the queue open at `now` (an aware datetime)?"""
    for closure in closures:
        if closure.starts_at <= now < closure.ends_at:
            return OpenState(False, "closure", closure.reason)
    local = now.astimezone(BEIJING)
    weekday = local.weekday()
    if calendar == "cn":
        special = _holiday(local.date())
        if special is not None and special[0] == "holiday":
            return OpenState(False, "holiday", special[1])
        if special is not None:
            weekday = 0
    week = parse_week(hours)
    if week is None:
        return OpenState(True, "open")
    minute = local.hour * 60 + local.minute
    if any(start <= minute < end for start, end in week.get(weekday, [])):
        return OpenState(True, "open")
    return OpenState(False, "hours")


def check_calendar(calendar: str) -> str:
    if calendar not in CALENDARS:
        raise ValidationError(
            f"holiday_calendar must be one of {', '.join(CALENDARS)}", field="holiday_calendar"
        )
    return calendar
