"""Segment counting, Chinese templates within two segments, and the command parser."""

from __future__ import annotations

from datetime import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sms_gateway.commands import CODES, Command, parse
from sms_gateway.errors import CommandParseError
from sms_gateway.segments import count_segments
from sms_gateway.templates import TEMPLATES, render


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("", "GSM-7", 1),
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("€" * 80, "GSM-7", 1),
        ("€" * 81, "GSM-7", 2),
        ("派" * 70, "UCS-2", 1),
        ("派" * 71, "UCS-2", 2),
        ("派" * 134, "UCS-2", 2),
        ("派" * 135, "UCS-2", 3),
        ("a" * 69 + "派", "UCS-2", 1),
        ("😀" * 35, "UCS-2", 1),
        ("😀" * 36, "UCS-2", 2),
    ],
)
def test_segments(text: str, encoding: str, segments: int) -> None:
    counted = count_segments(text)
    assert (counted.encoding, counted.segments) == (encoding, segments)


long_text = st.text(min_size=0, max_size=400)


@given(problem=long_text, address=long_text, customer=st.text(max_size=60))
def test_work_order_text_stays_within_two_segments(
    problem: str, address: str, customer: str
) -> None:
    body = render(
        "work_order_dispatched",
        {
            "order": "123456",
            "request": "FW000001",
            "customer": customer,
            "phone": "13905581234",
            "vehicle": "皖K12345",
            "address": address,
            "problem": problem,
        },
    )
    assert count_segments(body).segments <= 2
    assert "【派工单123456】" in body and body.endswith("回复JD 123456接单")


def test_every_template_fits() -> None:
    params = {
        "order": "99",
        "state_label": "已接单",
        "reason": "不是派给您的单,未处理。",
        "kind": "accept",
        "request": "FW000009",
        "office": "合肥服务站",
        "text": "x",
        "customer": "c",
        "phone": "1",
        "vehicle": "v",
        "address": "a",
        "problem": "p",
    }
    for name in TEMPLATES:
        assert count_segments(render(name, params)).segments <= 2, name


@pytest.mark.parametrize(
    ("text", "command", "order", "eta", "detail"),
    [
        ("JD 1234", Command.ACCEPT, 1234, None, None),
        ("jd1234", Command.ACCEPT, 1234, None, None),
        ("接单", Command.ACCEPT, None, None, None),
        ("接单 77", Command.ACCEPT, 77, None, None),
        ("ETA 1234 14:30", Command.SET_ETA, 1234, time(14, 30), None),
        ("ETA 9:05", Command.SET_ETA, None, time(9, 5), None),
        ("ＥＴＡ　１２　１４：３０", Command.SET_ETA, 12, time(14, 30), None),
        ("预计 15点", Command.SET_ETA, None, time(15, 0), None),
        ("DD 1234", Command.ARRIVE, 1234, None, None),
        ("到达。", Command.ARRIVE, None, None, None),
        ("PJ 1234 刹车片 2副", Command.NEED_PARTS, 1234, None, "刹车片 2副"),
        ("配件 空压机", Command.NEED_PARTS, None, None, "空压机"),
        ("FC 1234", Command.RETURN_TO_FACTORY, 1234, None, None),
        ("返厂", Command.RETURN_TO_FACTORY, None, None, None),
        ("WC 1234 换了刹车片", Command.COMPLETE, 1234, None, "换了刹车片"),
        ("完成 换了刹车片", Command.COMPLETE, None, None, "换了刹车片"),
        ("完成换了刹车片", Command.COMPLETE, None, None, "换了刹车片"),
    ],
)
def test_parse(
    text: str, command: Command, order: int | None, eta: time | None, detail: str | None
) -> None:
    parsed = parse(text)
    assert (parsed.command, parsed.order, parsed.eta, parsed.text) == (command, order, eta, detail)


@pytest.mark.parametrize(
    "text", ["", "好的", "JDX 12", "ETA 1234", "ETA 25:00", "ETA 12 14:75", "PJ 1234", "配件", "?"]
)
def test_unparseable(text: str) -> None:
    with pytest.raises(CommandParseError):
        parse(text)


@given(st.text(max_size=80))
def test_parser_never_fails_otherwise(text: str) -> None:
    try:
        parsed = parse(text)
    except CommandParseError:
        return
    assert parsed.command in set(Command)
    assert parsed.order is None or parsed.order >= 0


codes = st.sampled_from(sorted(CODES))
orders = st.one_of(st.none(), st.integers(min_value=1, max_value=999_999_999))
# CJK text as technicians write it (NFKC leaves it unchanged).
notes = st.text(
    alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), min_size=1, max_size=20
)


@given(code=codes, order=orders, note=notes, hour=st.integers(0, 23), minute=st.integers(0, 59))
def test_generated_commands_round_trip(
    code: str, order: int | None, note: str, hour: int, minute: int
) -> None:
    command = CODES[code]
    parts = [code]
    if order is not None:
        parts.append(str(order))
    if command == Command.SET_ETA:
        parts.append(f"{hour}:{minute:02d}")
    parts.append(note)
    parsed = parse(" ".join(parts))
    assert parsed.command == command
    assert parsed.order == order
    assert parsed.text == note
    if command == Command.SET_ETA:
        assert parsed.eta == time(hour, minute)
