"""The vehicle columns, shared by the customers kind (up to three vehicles a row: 车架号,
车架号2, 车架号3, ...) and the vehicles kind (one a row)."""

from __future__ import annotations

from typing import Any

from crm_core.importing.kinds import RowValues
from crm_core.importing.validation import Problems, model_fields, vin_problem
from crm_core.models import Vehicle
from crm_core.vehicles import clean_plate

BASE_ALIASES: dict[str, tuple[str, ...]] = {
    "vin": ("车架号", "车架号vin", "vin码", "车辆识别代号", "车辆识别码", "底盘号vin"),
    "plate": ("车牌号", "车牌", "车牌号码", "牌照号", "plate no"),
    "model": ("车型", "车辆型号", "型号"),
    "chassis": ("底盘", "底盘型号"),
    "purchase_date": ("购车日期", "购买日期", "购车时间", "purchase date"),
    "warranty_end": ("保修截止", "保修截止日期", "保修到期", "保修期至", "warranty end"),
}
DATES = ("purchase_date", "warranty_end")
SLOTS = ("", "2", "3")


def slot_aliases(slot: str) -> dict[str, tuple[str, ...]]:
    names = {f: (*aliases, f) for f, aliases in BASE_ALIASES.items()}
    return {f + slot: tuple(a + slot for a in aliases) for f, aliases in names.items()}


VEHICLE_ALIASES: dict[str, tuple[str, ...]] = {
    k: v for slot in SLOTS for k, v in slot_aliases(slot).items()
}


def vehicle_values(row: RowValues, problems: Problems, slot: str = "") -> dict[str, Any] | None:
    """The Vehicle columns of one vehicle slot of a row; None if the slot is empty."""
    vin_text = row.get("vin" + slot)
    details = [f + slot for f in BASE_ALIASES if f != "vin" and row.get(f + slot)]
    if not vin_text:
        if details:
            problems.add(details[0], "vehicle details without a VIN (车架号) in this row")
        return None
    vin, why = vin_problem(vin_text)
    if vin is None:
        problems.add("vin" + slot, why or "bad VIN")
        return None
    columns = {f + slot: f for f in BASE_ALIASES if f != "vin"}
    values = model_fields(Vehicle, row, problems, columns, dates=DATES)
    if "plate" in values:
        values["plate"] = clean_plate(values["plate"])
    return {**values, "vin": vin, "vin_tail": vin[-6:]}
