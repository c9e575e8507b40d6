"""SMS segment counting: GSM 03.38 7-bit (160 / 153 per part) or UCS-2 (70 / 67 per part).

One Chinese character forces UCS-2 for the whole message. UCS-2 counts UTF-16 code units, so a
character outside the BMP (an emoji) costs two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Escaped characters take two septets.
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")

UCS2_SINGLE, UCS2_PART = 70, 67
GSM7_SINGLE, GSM7_PART = 160, 153


@dataclass(frozen=True)
class SegmentCount:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets or UTF-16 code units
    segments: int


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text)


def _segments(units: int, single: int, part: int) -> int:
    if units == 0:
        return 1
    return 1 if units <= single else math.ceil(units / part)


def count_segments(text: str) -> SegmentCount:
    if is_gsm7(text):
        units = sum(2 if c in GSM7_EXTENDED else 1 for c in text)
        return SegmentCount("GSM-7", units, _segments(units, GSM7_SINGLE, GSM7_PART))
    units = len(text.encode("utf-16-le")) // 2
    return SegmentCount("UCS-2", units, _segments(units, UCS2_SINGLE, UCS2_PART))


def fits(text: str, max_segments: int) -> bool:
    return count_segments(text).segments <= max_segments
