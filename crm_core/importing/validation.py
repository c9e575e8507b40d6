"""Checks of single cells: names, phone numbers, VINs (with the check digit), dates, and the
model's own field rules (crm_core.records), each failure tied to the column it came from."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase

from crm_core.errors import HotlineError, InvalidPhoneNumber, ValidationError
from crm_core.importing.kinds import RowInvalid, RowValues
from crm_core.importing.report import Problem
from crm_core.phones import Phone, normalize, parse_or_raise
from crm_core.records import validate_fields
from crm_core.seed_data import vin_check_digit
from crm_core.vehicles import clean_plate, clean_vin

# Several numbers in one cell: "13905581234/0558-2123456", "…、…", "…；…". (A plain comma
# is not a separator: the normaliser reads "0558-2123456,801" as an extension.)
PHONE_SPLIT = re.compile(r"\s*[/、；，]\s*")
DATE_FORMS = (
    re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T].*)?$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
)


class Problems:
    """Collects a row's problems; `check()` raises them all at once."""

    def __init__(self, row: RowValues) -> None:
        self.row = row
        self.found: list[Problem] = []

    def add(self, field_name: str, reason: str, value: str | None = None) -> None:
        shown = self.row.get(field_name) if value is None else value
        self.found.append(Problem(self.row.line, self.row.header(field_name), shown, reason))

    def check(self) -> None:
        if self.found:
            raise RowInvalid(self.found)


def phones_of(
    row: RowValues, problems: Problems, labels: dict[str, str], area: str
) -> list[tuple[str, str, Phone]]:
    """(label, raw, Phone) for every number in the phone columns, each once."""
    out: list[tuple[str, str, Phone]] = []
    seen: set[str] = set()
    for field_name, label in labels.items():
        text = row.get(field_name)
        if not text:
            continue
        for raw in PHONE_SPLIT.split(text):
            if not raw:
                continue
            phone = normalize(raw, home_area_code=area)
            if phone is None:
                try:
                    parse_or_raise(raw, home_area_code=area)
                    reason = f"{raw!r} is not a valid phone number"
                except InvalidPhoneNumber as exc:
                    reason = exc.message
                problems.add(field_name, reason, raw)
            elif phone.e164 not in seen:
                seen.add(phone.e164)
                out.append((label, raw, phone))
    return out


def vin_problem(raw: str) -> tuple[str | None, str | None]:
    """(clean VIN, None) or (None, why not): 17 characters without I/O/Q, check digit right."""
    try:
        vin = clean_vin(raw)
    except ValidationError:
        return None, (
            f"VIN {raw!r} is not valid: it must be 17 letters and digits without I, O or Q "
            f"(it has {len(raw.strip())} characters)"
        )
    expected = vin_check_digit(vin)
    if vin[8] != expected:
        return None, (
            f"VIN {vin} has check digit {vin[8]!r} in position 9 but its other characters "
            f"give {expected!r} (ISO 3779 / GB 16735): a typing error?"
        )
    return vin, None


def parse_date(text: str) -> date | None:
    for form in DATE_FORMS:
        match = form.match(text.strip())
        if match:
            try:
                return date(int(match[1]), int(match[2]), int(match[3]))
            except ValueError:
                return None
    return None


@functools.cache
def _text_limits(model: type[DeclarativeBase]) -> dict[str, int]:
    """Columns that are plain text, and their length limits."""
    return {
        c.key: c.type.length
        for c in model.__table__.columns
        if type(c.type) is String and c.type.length is not None
    }


def _plain_text_fits(model: type[DeclarativeBase], values: dict[str, Any]) -> bool:
    """True if every value is stripped, non-empty text within its text column's limit (the
    case where validate_fields changes nothing); False sends the row through validate_fields."""
    limits = _text_limits(model)
    for key, value in values.items():
        limit = limits.get(key)
        if limit is None or not isinstance(value, str) or len(value) > limit:
            return False
    return True


def model_fields(
    model: type[DeclarativeBase],
    row: RowValues,
    problems: Problems,
    fields: dict[str, str],
    dates: Iterable[str] = (),
) -> dict[str, Any]:
    """file field → model column values, checked by the model's own rules (records.py)."""
    values: dict[str, Any] = {}
    date_fields = set(dates)
    for field_name, column in fields.items():
        text = row.get(field_name)
        if not text:
            continue
        if column in date_fields:
            day = parse_date(text)
            if day is None:
                problems.add(field_name, f"{text!r} is not a date like 2024-03-15")
                continue
            values[column] = day
        else:
            values[column] = text
    if _plain_text_fits(model, values):
        return values  # what validate_fields would return, at a tenth of its cost
    try:
        return validate_fields(model, values, allowed=values.keys())
    except HotlineError:
        pass
    # Only a bad row pays for checking field by field, to name every bad column.
    clean: dict[str, Any] = {}
    for field_name, column in fields.items():
        if column not in values:
            continue
        try:
            clean.update(validate_fields(model, {column: values[column]}, allowed=[column]))
        except HotlineError as exc:
            problems.add(field_name, exc.message)
    return clean


def as_int(text: str) -> int | None:
    try:
        return int(float(text))
    except ValueError:
        return None


__all__ = ["Problems", "as_int", "clean_plate", "model_fields", "parse_date", "phones_of"]
