"""Phone-number normalisation for the 400 hotline, built on ``phonenumbers``.

Canonical form
--------------
Every number we store or compare is reduced to one string, ``Phone.e164``:

* plain E.164 for the number itself: ``"+8613905581234"``, ``"+865582123456"``,
  ``"+864008001234"``, ``"+12025550123"``;
* an extension, if any, is appended in RFC 3966 style: ``"+865582123456;ext=801"``.

``Phone.digits`` is the national significant number (no country code, no trunk ``0``,
no extension), e.g. ``"13905581234"`` / ``"5582123456"``; ``suffix_key(digits)`` is
what goes into a reversed-digits column so "last N digits" searches are prefix scans.

``normalize`` is for caller ids and imported data: it never raises and returns ``None``
for anything that is not a valid number (anonymous, withheld, garbage...).
``parse_or_raise`` is for numbers an agent types in: it raises ``InvalidPhoneNumber``
with a message saying what is wrong and what a valid number looks like.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Final

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from crm_core.errors import InvalidPhoneNumber

__all__ = [
    "KINDS",
    "Phone",
    "digits_only",
    "mask",
    "normalize",
    "parse_or_raise",
    "suffix_key",
]

KINDS: Final = frozenset({"mobile", "landline", "service", "other"})

_EXT_SEPARATOR: Final = ";ext="
_MAX_RAW_LENGTH: Final = 80
_MAX_DIGITS: Final = 17  # phonenumbers' own limit for a national number
_MIN_DIGITS: Final = 3

# Caller-id values that mean "no number" (Asterisk, SIP trunks, carriers, CSV exports).
_NO_NUMBER: Final = frozenset(
    {
        "",
        "0",
        "anonymous",
        "unknown",
        "<unknown>",
        "restricted",
        "private",
        "withheld",
        "unavailable",
        "null",
        "none",
        "n/a",
        "-",
    }
)

# "... ext 801", "...;ext=801", "... x801", "...转801", "...分机801", "...#801", "...,801"
_EXT_RE: Final = re.compile(
    r"^(?P<main>.+?)\s*(?:;\s*ext\s*=|extension|ext\.?|x|转|分机号?|[#,])\s*(?P<ext>\d{1,8})\s*$",
    re.IGNORECASE,
)
# "0558-2123456-801": a trailing dash group, tried only when the whole string is invalid.
_DASH_EXT_RE: Final = re.compile(r"^(?P<main>.*\d)\s*-\s*(?P<ext>\d{1,6})$")
# "2123456-801": a bare local number with a dash extension (CN only), which would
# otherwise read as a 10-digit national number ("21 23456801", Shanghai).
_LOCAL_DASH_EXT_RE: Final = re.compile(r"^(?P<main>[2-9]\d{6,7})\s*-\s*(?P<ext>\d{1,6})$")
# What may remain in the number part once the extension is gone.
_ALLOWED_MAIN_RE: Final = re.compile(r"^[\s(]*\+?[\d\s\-().\/]+$")

_LEADING_BEFORE_PLUS_RE: Final = re.compile(r"^[\s(]*(?=\+)")

_KIND_BY_TYPE: Final[dict[int, str]] = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "landline",
    PhoneNumberType.TOLL_FREE: "service",
    PhoneNumberType.SHARED_COST: "service",
    PhoneNumberType.UAN: "service",
}

_EXAMPLES: Final = (
    "e.g. mobile 13905581234, landline 0558-2123456 (or 2123456 for the home area), "
    "hotline 400-800-1234, extension 0558-2123456转801, foreign +12025550123"
)


@dataclass(frozen=True, slots=True)
class Phone:
    """A valid, normalised phone number.

    ``e164`` is the canonical string (``"+8613905581234"``, ``"+865582123456;ext=801"``),
    ``kind`` is one of ``KINDS``, ``digits`` the national significant number.
    """

    e164: str
    kind: str
    digits: str

    @property
    def number(self) -> str:
        """The E.164 number without the extension."""
        return self.e164.partition(_EXT_SEPARATOR)[0]

    @property
    def extension(self) -> str | None:
        ext = self.e164.partition(_EXT_SEPARATOR)[2]
        return ext or None

    @property
    def is_domestic(self) -> bool:
        return self.e164.startswith("+86")

    @property
    def display(self) -> str:
        """National readable form for Chinese numbers, international form otherwise.

        ``"139 0558 1234"``, ``"0558-2123456"``, ``"400-800-1234"``,
        ``"0558-2123456 转801"``, ``"+1 202-555-0123"``. ``normalize(display)`` gives
        the same ``Phone`` back.
        """
        ext = self.extension
        suffix = f" 转{ext}" if ext else ""
        if self.is_domestic:
            return _cn_display(self.kind, self.digits) + suffix
        try:
            parsed = phonenumbers.parse(self.number, None)
            text: str = phonenumbers.format_number(parsed, PhoneNumberFormat.INTERNATIONAL)
        except NumberParseException:
            text = self.number
        return text + suffix


def _cn_area_code_length(digits: str) -> int:
    # Beijing (10) and 20-29 have two-digit area codes, every other area code has three.
    return 2 if digits[:1] in ("1", "2") else 3


def _cn_display(kind: str, d: str) -> str:
    if kind == "mobile" and len(d) == 11:
        return f"{d[:3]} {d[3:7]} {d[7:]}"
    if kind == "service" and len(d) == 10:
        return f"{d[:3]}-{d[3:6]}-{d[6:]}"
    if kind == "landline":
        area = _cn_area_code_length(d)
        return f"0{d[:area]}-{d[area:]}"
    return d


# --------------------------------------------------------------------------- helpers


def digits_only(raw: str) -> str:
    """Keep only the digits of ``raw`` as ASCII, converting full-width (and other
    Unicode decimal) digits: ``"１３９-0558"`` -> ``"1390558"``."""
    if raw.isascii():
        return "".join(ch for ch in raw if "0" <= ch <= "9")
    return "".join(str(unicodedata.decimal(ch)) for ch in raw if ch.isdecimal())


def suffix_key(digits: str) -> str:
    """The reversed digit string of ``digits``.

    Stored in an indexed column, it turns "numbers ending in 1234" into the prefix
    query ``suffix_key LIKE '4321%'``. Non-digits are dropped first.
    """
    return digits_only(digits)[::-1]


class _Reason:
    """Why a string is not a phone number (internal; messages for parse_or_raise)."""

    EMPTY: Final = "empty"
    NO_NUMBER: Final = "no_number"
    BAD_CHARS: Final = "bad_characters"
    TOO_SHORT: Final = "too_short"
    TOO_LONG: Final = "too_long"
    NO_HOME_AREA: Final = "no_home_area"
    INVALID: Final = "invalid"


_MESSAGES: Final[dict[str, str]] = {
    _Reason.EMPTY: "No phone number was given",
    _Reason.NO_NUMBER: "{raw!r} is not a phone number (anonymous or withheld caller id)",
    _Reason.BAD_CHARS: (
        "{raw!r} contains characters that do not belong in a phone number; "
        "only digits, spaces, dashes, parentheses and a leading + are allowed"
    ),
    _Reason.TOO_SHORT: "{raw!r} has too few digits to be a phone number",
    _Reason.TOO_LONG: "{raw!r} has too many digits to be a phone number",
    _Reason.NO_HOME_AREA: (
        "{raw!r} looks like a local number but the home area code {area!r} is not usable; "
        "enter the area code too"
    ),
    _Reason.INVALID: (
        "{raw!r} is not a valid phone number (wrong length or no such prefix/area code)"
    ),
}


def _kind_of(number: phonenumbers.PhoneNumber) -> str:
    return _KIND_BY_TYPE.get(phonenumbers.number_type(number), "other")


def _candidate(main: str, digits: str, home_area: str, region: str) -> str | None:
    """Turn the number part into a string for ``phonenumbers.parse``; None if the
    home area code is needed but unusable."""
    if main.startswith("+"):
        return "+" + digits
    if region.upper() != "CN":
        return digits
    if digits.startswith("00"):  # CN international prefix: 0086..., 001...
        return "+" + digits[2:]
    if len(digits) == 13 and digits.startswith("861"):  # 86 + an 11-digit mobile
        return "+" + digits
    if 7 <= len(digits) <= 8 and digits[0] not in "01":  # bare local landline
        return "0" + home_area + digits if home_area else None
    return digits


def _parse_one(candidate: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(candidate, region)
    except NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def _build(number: phonenumbers.PhoneNumber, ext: str | None) -> Phone:
    e164: str = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if ext:
        e164 += _EXT_SEPARATOR + ext
    digits: str = phonenumbers.national_significant_number(number)
    return Phone(e164=e164, kind=_kind_of(number), digits=digits)


def _parse(raw: str | None, home_area_code: str, region: str) -> Phone | str:
    """A ``Phone`` or a ``_Reason`` string. Never raises for a str/None input."""
    if raw is None or not isinstance(raw, str):
        return _Reason.EMPTY
    if len(raw) > _MAX_RAW_LENGTH:
        return _Reason.TOO_LONG
    text = unicodedata.normalize("NFKC", raw).strip()
    if not text:
        return _Reason.EMPTY
    if text.lower() in _NO_NUMBER or not any("0" <= ch <= "9" for ch in text):
        return _Reason.NO_NUMBER

    ext: str | None = None
    main = text
    match = _EXT_RE.match(text)
    if match is None and region.upper() == "CN":
        match = _LOCAL_DASH_EXT_RE.match(text)
    if match:
        main, ext = match["main"].strip(), match["ext"]
    if not _ALLOWED_MAIN_RE.match(main):
        return _Reason.BAD_CHARS
    main = _LEADING_BEFORE_PLUS_RE.sub("", main)  # "(+86) 139..." -> "+86) 139..."

    digits = digits_only(main)
    if len(digits) < _MIN_DIGITS:
        return _Reason.TOO_SHORT
    if len(digits) > _MAX_DIGITS:
        return _Reason.TOO_LONG

    home_area = digits_only(home_area_code).lstrip("0")
    candidate = _candidate(main, digits, home_area, region)
    if candidate is None:
        return _Reason.NO_HOME_AREA
    number = _parse_one(candidate, region)

    if number is None and ext is None:
        dash = _DASH_EXT_RE.match(main)
        if dash:
            main_part = dash["main"]
            part_candidate = _candidate(main_part, digits_only(main_part), home_area, region)
            if part_candidate is not None:
                number = _parse_one(part_candidate, region)
                if number is not None:
                    ext = dash["ext"]

    if number is None:
        if len(digits) < 7 and not main.startswith("+"):
            return _Reason.TOO_SHORT
        return _Reason.INVALID
    return _build(number, ext)


# --------------------------------------------------------------------------- public API


def normalize(raw: str | None, *, home_area_code: str = "0558", region: str = "CN") -> Phone | None:
    """Normalise a caller id or stored number; ``None`` if it is not a valid number.

    Accepts ``+86``/``0086``/``86`` prefixes, the trunk ``0``, landlines with or without
    area code (a bare 7-8 digit number gets ``home_area_code``), mobiles, 400/800
    numbers, extensions (``ext 801``, ``-801``, ``转801``, ``;ext=801``), foreign
    numbers in E.164 or with the ``00`` prefix, full-width digits and stray
    spaces/dashes/parentheses. Never raises.
    """
    if isinstance(raw, str) and region == "CN":
        fast = _fast_mobile(raw)
        if fast is not None:
            return fast
    return _normalize_cached(raw, home_area_code, region)


@functools.lru_cache(maxsize=16_384)
def _normalize_cached(raw: str | None, home_area_code: str, region: str) -> Phone | None:
    # Callers ring back and numbers repeat; parsing with phonenumbers costs ~70 µs.
    try:
        result = _parse(raw, home_area_code, region)
    except Exception:  # belt and braces: a caller id must never crash call handling
        return None
    return result if isinstance(result, Phone) else None


_MOBILE_FAST_RE = re.compile(r"^(?:\+86|0086|86)?(1[3-9]\d{9})$")


@functools.cache
def _mobile_blocks() -> frozenset[str]:
    """4-digit CN mobile prefixes that phonenumbers accepts whole (probed once, ~0.1 s).

    Caller IDs arrive mostly as bare or +86 mobiles; for those, a prefix check gives the same
    answer as a full parse (a test holds both to it) at a fraction of its cost."""
    blocks = set()
    for prefix in map(str, range(1300, 2000)):
        samples = (prefix + "0000000", prefix + "5050505", prefix + "9999999")
        parsed = [_parse_one(sample, "CN") for sample in samples]
        if all(n is not None and _kind_of(n) == "mobile" for n in parsed):
            blocks.add(prefix)
    return frozenset(blocks)


def _fast_mobile(raw: str) -> Phone | None:
    match = _MOBILE_FAST_RE.match(raw)
    if match is None or match[1][:4] not in _mobile_blocks():
        return None
    return Phone(e164="+86" + match[1], kind="mobile", digits=match[1])


def parse_or_raise(raw: str | None, *, home_area_code: str = "0558", region: str = "CN") -> Phone:
    """Like ``normalize`` but for user-entered numbers: raises ``InvalidPhoneNumber``
    with a message saying what is wrong and what a valid number looks like."""
    try:
        result = _parse(raw, home_area_code, region)
    except Exception:
        result = _Reason.INVALID
    if isinstance(result, Phone):
        return result
    message = _MESSAGES[result].format(raw=raw, area=home_area_code)
    raise InvalidPhoneNumber(f"{message}; {_EXAMPLES}", raw=raw, reason=result)


# A phone number inside free text (an SMS body, an actor such as "sms:+86…").
NUMBER_IN_TEXT = re.compile(r"(?<![\d+])\+?\d[\d-]{6,}\d(?!\d)")


def mask_in_text(text: str) -> str:
    """Every phone-number-looking run of digits in free text, masked like ``mask``."""
    return NUMBER_IN_TEXT.sub(lambda m: mask(m.group()), text)


def mask(phone_display_or_e164: str) -> str:
    """Hide the middle digits for display to people who must not see the full number.

    Mobiles: ``"139****1234"``; landlines keep the area code and last 4 digits:
    ``"0558-***3456"``; foreign numbers keep the country code and last 4:
    ``"+1 ******0123"``. 400/800 service numbers are public and returned unmasked.
    Extensions are dropped. Input that does not parse is masked digit-wise
    (first 3 and last 4 kept if there are at least 8 digits, else all hidden).
    """
    phone = normalize(phone_display_or_e164)
    if phone is None:
        d = digits_only(phone_display_or_e164)
        if not d:
            return phone_display_or_e164
        if len(d) >= 8:
            return d[:3] + "*" * (len(d) - 7) + d[-4:]
        return "*" * len(d)
    d = phone.digits
    if not phone.is_domestic:
        country_code = phone.number[1 : len(phone.number) - len(d)]
        return f"+{country_code} " + "*" * max(len(d) - 4, 0) + d[-4:]
    if phone.kind == "service":
        return _cn_display(phone.kind, d)
    if phone.kind == "landline":
        area = _cn_area_code_length(d)
        local = d[area:]
        return f"0{d[:area]}-" + "*" * max(len(local) - 4, 0) + local[-4:]
    return d[:3] + "*" * max(len(d) - 7, 0) + d[-4:]
