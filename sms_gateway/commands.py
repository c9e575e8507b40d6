"""Technician SMS commands: a code or a Chinese keyword, an optional order number, arguments.

    JD 1234 / 接单            accept
    JJ 1234 <reason> / 拒单   decline (the reason is required)
    ETA 1234 14:30            on the way, expected at 14:30 (local time)
    DD 1234 / 到达            arrived
    PJ 1234 <parts> / 配件    needs parts (the parts are required)
    FC 1234 / 返厂            return to factory
    WC 1234 <result> / 完成   done, with the result

Input is NFKC-normalised first, so full-width letters, digits and colons (ＪＤ１２３４,
１４：３０) read like their ASCII forms. Pure: no database, no I/O.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass
from datetime import time

from sms_gateway.errors import CommandParseError

MAX_TEXT = 500


class Command(enum.StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    SET_ETA = "set_eta"
    ARRIVE = "arrive"
    NEED_PARTS = "need_parts"
    RETURN_TO_FACTORY = "return_to_factory"
    COMPLETE = "complete"


CODES: dict[str, Command] = {
    "JD": Command.ACCEPT,
    "接单": Command.ACCEPT,
    "JJ": Command.DECLINE,
    "拒单": Command.DECLINE,
    "ETA": Command.SET_ETA,
    "预计": Command.SET_ETA,
    "DD": Command.ARRIVE,
    "到达": Command.ARRIVE,
    "PJ": Command.NEED_PARTS,
    "配件": Command.NEED_PARTS,
    "FC": Command.RETURN_TO_FACTORY,
    "返厂": Command.RETURN_TO_FACTORY,
    "WC": Command.COMPLETE,
    "完成": Command.COMPLETE,
}
# Latin codes need a boundary ("JDX" is not JD); Chinese keywords may run into the text
# ("完成换了刹车片").
_LATIN = "|".join(sorted((c for c in CODES if c.isascii()), key=len, reverse=True))
_CHINESE = "|".join(c for c in CODES if not c.isascii())
_HEAD = re.compile(rf"^(?:(?P<code>{_LATIN})(?=$|[\s\d:#])|(?P<zh>{_CHINESE}))", re.IGNORECASE)
_ORDER = re.compile(r"^#?(?P<order>\d{1,9})(?=$|\s)")
_TIME = re.compile(r"^(?P<h>\d{1,2})(?::|点)(?P<m>\d{2})?分?(?=$|\s)")
_TRIM = " \t\r\n.。!!,,;;"


@dataclass(frozen=True)
class ParsedCommand:
    command: Command
    order: int | None
    eta: time | None = None
    text: str | None = None


def _eta(rest: str) -> tuple[time, str]:
    match = _TIME.match(rest)
    if match is None:
        raise CommandParseError("ETA needs a time like 14:30", hint="ETA 1234 14:30")
    hour, minute = int(match["h"]), int(match["m"] or 0)
    if hour > 23 or minute > 59:
        raise CommandParseError("ETA needs a time like 14:30", hint="ETA 1234 14:30")
    return time(hour, minute), rest[match.end() :].strip()


def parse(raw: str) -> ParsedCommand:
    """Read one command or raise CommandParseError (the caller replies with the syntax)."""
    text = unicodedata.normalize("NFKC", raw or "").strip(_TRIM)
    head = _HEAD.match(text)
    if head is None:
        raise CommandParseError("not a command", hint="JD 1234")
    command = CODES[head["code"].upper()] if head["code"] else CODES[head["zh"]]
    rest = text[head.end() :].lstrip(" \t#")
    order = None
    numbered = _ORDER.match(rest)
    # "ETA 14:30" has no order number: a number directly followed by ':' is the time.
    if numbered is not None:
        order = int(numbered["order"])
        rest = rest[numbered.end() :].strip()
    eta = None
    if command == Command.SET_ETA:
        eta, rest = _eta(rest)
    detail = rest.strip(_TRIM)[:MAX_TEXT] or None
    if command == Command.NEED_PARTS and not detail:
        raise CommandParseError("PJ needs the parts", hint="PJ 1234 刹车片")
    if command == Command.DECLINE and not detail:
        raise CommandParseError("JJ needs a reason", hint="JJ 1234 人在外地")
    return ParsedCommand(command, order, eta, detail)
