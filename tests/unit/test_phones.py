"""crm_core.phones: normalisation, canonical form, masking, errors, and fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_core.errors import InvalidPhoneNumber
from crm_core.phones import (
    KINDS,
    Phone,
    digits_only,
    mask,
    normalize,
    parse_or_raise,
    suffix_key,
)
from crm_core.phones import _parse as _parse

MOBILE = Phone(e164="+8613905581234", kind="mobile", digits="13905581234")
LANDLINE = Phone(e164="+865582123456", kind="landline", digits="5582123456")
LANDLINE_EXT = Phone(e164="+865582123456;ext=801", kind="landline", digits="5582123456")
HOTLINE_400 = Phone(e164="+864008001234", kind="service", digits="4008001234")
HOTLINE_800 = Phone(e164="+868008101234", kind="service", digits="8008101234")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # mobiles, every prefix style
        ("13905581234", MOBILE),
        ("+86 139-0558-1234", MOBILE),
        ("+8613905581234", MOBILE),
        ("008613905581234", MOBILE),
        ("8613905581234", MOBILE),
        ("86 139 0558 1234", MOBILE),
        ("(+86) 139 0558 1234", MOBILE),
        ("013905581234", MOBILE),  # trunk 0 dialled before a mobile
        ("１３９０５５８１２３４", MOBILE),  # full-width digits
        ("＋８６　１３９－０５５８－１２３４", MOBILE),  # full-width plus, space, dash
        (" 139 0558 1234 ", MOBILE),
        ("(139)0558.1234", MOBILE),
        # landlines
        ("05582123456", LANDLINE),
        ("0558-2123456", LANDLINE),
        ("0558 212 3456", LANDLINE),
        ("(0558)2123456", LANDLINE),
        ("(0558) 212-3456", LANDLINE),
        ("+865582123456", LANDLINE),
        ("+86 0558 2123456", LANDLINE),  # redundant trunk 0 after the country code
        ("+86(0)5582123456", LANDLINE),
        ("00865582123456", LANDLINE),
        ("865582123456", LANDLINE),
        ("2123456", LANDLINE),  # bare local number takes the home area code
        ("212-3456", LANDLINE),
        ("２１２３４５６", LANDLINE),
        # 400 / 800
        ("4008001234", HOTLINE_400),
        ("400-800-1234", HOTLINE_400),
        ("400 800 1234", HOTLINE_400),
        ("+864008001234", HOTLINE_400),
        ("8008101234", HOTLINE_800),
        ("800-810-1234", HOTLINE_800),
        # extensions
        ("0558-2123456 ext 801", LANDLINE_EXT),
        ("0558-2123456 ext. 801", LANDLINE_EXT),
        ("0558-2123456 EXT801", LANDLINE_EXT),
        ("0558-2123456 extension 801", LANDLINE_EXT),
        ("0558-2123456 x801", LANDLINE_EXT),
        ("0558-2123456-801", LANDLINE_EXT),
        ("0558-2123456转801", LANDLINE_EXT),
        ("0558-2123456 转 801", LANDLINE_EXT),
        ("0558-2123456分机801", LANDLINE_EXT),
        ("0558-2123456#801", LANDLINE_EXT),
        ("0558-2123456,801", LANDLINE_EXT),
        ("+865582123456;ext=801", LANDLINE_EXT),
        ("０５５８－２１２３４５６转８０１", LANDLINE_EXT),
        ("2123456 转801", LANDLINE_EXT),
        ("2123456-801", LANDLINE_EXT),
        # other Chinese areas
        ("021-12345678", Phone("+862112345678", "landline", "2112345678")),
        ("010 1234 5678", Phone("+861012345678", "landline", "1012345678")),
        # foreign numbers
        ("+12025550123", Phone("+12025550123", "other", "2025550123")),
        ("+1 (202) 555-0123", Phone("+12025550123", "other", "2025550123")),
        ("001 202 555 0123", Phone("+12025550123", "other", "2025550123")),
        ("+44 20 7946 0000", Phone("+442079460000", "landline", "2079460000")),
        ("+44 7911 123456", Phone("+447911123456", "mobile", "7911123456")),
        ("+81 90-1234-5678", Phone("+819012345678", "mobile", "9012345678")),
    ],
)
def test_normalize_examples(raw: str, expected: Phone) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "   ",
        "anonymous",
        "Anonymous",
        "ANONYMOUS",
        "unknown",
        "<unknown>",
        "restricted",
        "private",
        "withheld",
        "Unavailable",
        "0",
        "00",
        "-",
        "abc",
        "phone",
        "12",
        "110",
        "95588",  # short service codes are not dialable numbers
        "99999999999",
        "12345678901",  # 11 digits starting with 1, but no such mobile prefix
        "1390558123",  # mobile one digit short
        "139055812345",  # mobile one digit long
        "21234567",  # 8-digit local number is invalid in 0558
        "0558-212345",  # too short for 0558
        "+0",
        "+",
        "+86",
        "+999 1234567",  # no such country code
        "tel:13905581234x",
        "13905581234abc",
        "abc13905581234",
        "139 0558 1234 ++",
        "+86+13905581234",
        "1" * 40,
        "1" * 500,
        "13905581234" * 10,
        "\x00\x01\x02",
        "😀13905581234",
    ],
)
def test_normalize_rejects(raw: str | None) -> None:
    assert normalize(raw) is None


def test_home_area_code_is_a_parameter() -> None:
    shanghai = normalize("21234567", home_area_code="021")
    assert shanghai == Phone("+862121234567", "landline", "2121234567")
    assert normalize("2123456", home_area_code="558") == LANDLINE
    assert normalize("2123456", home_area_code="0551") is None  # Hefei numbers have 8 digits
    assert normalize("2123456", home_area_code="") is None
    assert normalize("2123456", home_area_code="garbage") is None
    # numbers with an area code ignore the home area
    assert normalize("0558-2123456", home_area_code="021") == LANDLINE


def test_region_is_a_parameter() -> None:
    assert normalize("(202) 555-0123", region="US") == Phone("+12025550123", "other", "2025550123")
    assert normalize("+8613905581234", region="US") == MOBILE
    assert normalize("13905581234", region="ZZ") is None  # unknown region: never raises


@pytest.mark.parametrize(
    ("raw", "display"),
    [
        ("13905581234", "139 0558 1234"),
        ("0558-2123456", "0558-2123456"),
        ("2123456", "0558-2123456"),
        ("021-12345678", "021-12345678"),
        ("010-12345678", "010-12345678"),
        ("4008001234", "400-800-1234"),
        ("8008101234", "800-810-1234"),
        ("0558-2123456-801", "0558-2123456 转801"),
        ("+12025550123", "+1 202-555-0123"),
        ("+442079460000", "+44 20 7946 0000"),
    ],
)
def test_display(raw: str, display: str) -> None:
    phone = normalize(raw)
    assert phone is not None
    assert phone.display == display
    assert normalize(display) == phone  # display parses back to the same number


def test_phone_properties() -> None:
    assert LANDLINE_EXT.number == "+865582123456"
    assert LANDLINE_EXT.extension == "801"
    assert LANDLINE.extension is None
    assert MOBILE.is_domestic
    assert not Phone("+12025550123", "other", "2025550123").is_domestic
    with pytest.raises(AttributeError):
        MOBILE.e164 = "+861"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "message_part"),
    [
        ("", "No phone number"),
        (None, "No phone number"),
        ("anonymous", "not a phone number"),
        ("12", "too few digits"),
        ("139-0558-12a4", "characters that do not belong"),
        ("1" * 20, "too many digits"),
        ("99999999999", "not a valid phone number"),
        ("1390558123", "not a valid phone number"),
    ],
)
def test_parse_or_raise_errors(raw: str | None, message_part: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as info:
        parse_or_raise(raw)
    err = info.value
    assert message_part in err.message
    assert "13905581234" in err.message  # always shows what a valid number looks like
    assert err.details["raw"] == raw
    assert err.to_dict()["error_id"] == "invalid_phone_number"


def test_parse_or_raise_local_number_without_home_area() -> None:
    with pytest.raises(InvalidPhoneNumber, match="area code"):
        parse_or_raise("2123456", home_area_code="")


def test_parse_or_raise_valid() -> None:
    assert parse_or_raise(" 139-0558-1234 ") == MOBILE
    assert parse_or_raise("21234567", home_area_code="021").e164 == "+862121234567"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("139-0558-1234", "13905581234"),
        ("１３９０５５８１２３４", "13905581234"),
        ("+86 (0558) 212-3456", "8605582123456"),
        ("abc", ""),
        ("", ""),
        ("٣٤٥", "345"),  # Arabic-Indic digits
    ],
)
def test_digits_only(raw: str, expected: str) -> None:
    assert digits_only(raw) == expected


def test_suffix_key() -> None:
    assert suffix_key("13905581234") == "43218550931"
    assert suffix_key("5582123456").startswith(suffix_key("3456"))
    assert suffix_key("139-0558-1234") == "43218550931"
    assert suffix_key("") == ""


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("13905581234", "139****1234"),
        ("+8613905581234", "139****1234"),
        ("139 0558 1234", "139****1234"),
        ("0558-2123456", "0558-***3456"),
        ("+865582123456", "0558-***3456"),
        ("+865582123456;ext=801", "0558-***3456"),
        ("021-12345678", "021-****5678"),
        ("400-800-1234", "400-800-1234"),  # public service numbers are not masked
        ("+12025550123", "+1 ******0123"),
        ("+44 20 7946 0000", "+44 ******0000"),
        # unparseable input never leaks all its digits
        ("99999999999", "999****9999"),
        ("12345", "*****"),
        ("anonymous", "anonymous"),
        ("", ""),
    ],
)
def test_mask(raw: str, masked: str) -> None:
    assert mask(raw) == masked


# --------------------------------------------------------------------------- properties

phone_like = st.from_regex(
    r"[+(]{0,2}[0-9０-９ ()\-.+]{0,24}([ ]?(ext|x|转|#|-)[ ]?[0-9]{1,6})?", fullmatch=True
)
mobiles = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)
allocated_mobiles = st.builds(
    "{}{}".format,
    st.sampled_from(["130", "135", "138", "139", "150", "166", "177", "186", "189", "199"]),
    st.from_regex(r"[0-9]{8}", fullmatch=True),
)
valid_looking = st.one_of(
    allocated_mobiles,
    st.from_regex(r"0558-?[2-8][0-9]{6}", fullmatch=True),
    st.from_regex(r"[2-8][0-9]{6}", fullmatch=True),
    st.from_regex(r"0(10|2[0-57-9])-?[2-6][0-9]{7}", fullmatch=True),
    st.from_regex(r"(400|800)-?[0-9]{3}-?[0-9]{4}", fullmatch=True),
    st.from_regex(r"0558-[2-8][0-9]{6}(转| ext |-)[0-9]{1,4}", fullmatch=True),
    st.from_regex(r"\+(1|44|81|49|33|852|886)[0-9]{6,11}", fullmatch=True),
)


@given(st.text())
@settings(max_examples=500)
def test_normalize_never_raises_on_any_text(raw: str) -> None:
    result = normalize(raw)
    assert result is None or isinstance(result, Phone)


@given(phone_like)
@settings(max_examples=1000)
def test_normalize_never_raises_on_phone_like_text(raw: str) -> None:
    result = normalize(raw)
    assert result is None or result.kind in KINDS


@given(st.one_of(phone_like, st.text(), st.from_regex(r"[+0-9\s()-]{0,30}", fullmatch=True)))
@settings(max_examples=1000)
def test_parse_never_needs_the_safety_net(raw: str) -> None:
    # normalize() also catches any exception; the parser itself must not raise either.
    result = _parse(raw, "0558", "CN")
    assert isinstance(result, Phone | str)


@given(st.one_of(phone_like, st.text(), mobiles))
@settings(max_examples=500)
def test_parse_or_raise_raises_only_invalid_phone_number(raw: str) -> None:
    try:
        phone = parse_or_raise(raw)
    except InvalidPhoneNumber as err:
        assert err.message
        assert normalize(raw) is None
    else:
        assert normalize(raw) == phone


@given(st.one_of(phone_like, mobiles, st.from_regex(r"0[1-9][0-9]{9,10}", fullmatch=True)))
@settings(max_examples=1000)
def test_normalize_is_idempotent(raw: str) -> None:
    phone = normalize(raw)
    if phone is None:
        return
    _check_canonical(phone)


@given(valid_looking)
@settings(max_examples=1000)
def test_normalize_is_idempotent_on_real_numbers(raw: str) -> None:
    phone = normalize(raw)
    if raw.startswith("+"):
        if phone is None:  # not every random foreign number is allocated
            return
    else:
        assert phone is not None, raw
    _check_canonical(phone)


def _check_canonical(phone: Phone) -> None:
    assert phone.kind in KINDS
    assert normalize(phone.e164) == phone
    assert normalize(phone.display) == phone
    assert phone.e164.partition(";ext=")[0].endswith(phone.digits)


@given(allocated_mobiles)
def test_one_mobile_written_six_ways_has_one_canonical_form(digits: str) -> None:
    phone = normalize(digits)
    assert phone is not None
    full_width = digits.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    spellings = [
        f"+86{digits}",
        f"+86 {digits[:3]}-{digits[3:7]}-{digits[7:]}",
        f"0086{digits}",
        f"86{digits}",
        f"({digits[:3]}) {digits[3:7]} {digits[7:]}",
        full_width,
    ]
    assert {normalize(s) for s in spellings} == {phone}
    assert phone.e164 == f"+86{digits}"
    assert phone.kind == "mobile"
    assert mask(phone.e164) == f"{digits[:3]}****{digits[-4:]}"


@given(
    st.integers(min_value=1300, max_value=1999),
    st.integers(0, 9_999_999),
    st.sampled_from(["", "+86", "0086", "86"]),
)
def test_fast_mobile_path_agrees_with_a_full_parse(prefix: int, rest: int, lead: str) -> None:
    from crm_core.phones import _normalize_cached

    raw = f"{lead}{prefix}{rest:07d}"
    assert normalize(raw) == _normalize_cached(raw, "0558", "CN")
