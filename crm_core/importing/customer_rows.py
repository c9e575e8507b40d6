"""Rows of a customers file: the headers they may carry and the checks of one row."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table

from crm_core.importing.kinds import ImportContext, RowResult, RowValues
from crm_core.importing.report import Outcome, Problem
from crm_core.importing.validation import Problems, as_int, model_fields, phones_of
from crm_core.importing.vehicle_fields import VEHICLE_ALIASES, vehicle_values
from crm_core.models import Customer, CustomerKind, Vehicle
from crm_core.phones import Phone

CUSTOMERS: Table = Customer.__table__  # type: ignore[assignment]
VEHICLES: Table = Vehicle.__table__  # type: ignore[assignment]
SLOTS = ("", "2", "3")

TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "code": ("客户编码", "客户代码", "客户编号", "编码", "customer code", "customer no"),
    "name": ("客户名称", "客户名", "客户", "单位名称", "公司名称", "名称", "customer name"),
    "industry": ("行业", "所属行业"),
    "region": ("地区", "区域", "大区", "所属区域", "所属地区"),
    "province": ("省份", "省", "所在省份"),
    "city": ("城市", "市", "所在城市", "地市"),
    "address": ("地址", "详细地址", "联系地址", "通讯地址"),
    "postcode": ("邮编", "邮政编码", "zip"),
    "fax": ("传真",),
    "website": ("网址", "网站", "web"),
    "email": ("邮箱", "电子邮箱", "电子邮件", "e-mail"),
    "classification": ("客户分类", "分类", "客户级别"),
}
OTHER_FIELDS: dict[str, tuple[str, ...]] = {
    "kind": ("客户类型", "类型", "type"),
    "vip_level": ("vip等级", "vip级别", "vip", "vip level"),
}
PHONE_LABELS = {
    "phone": "phone",
    "phone2": "phone",
    "phone3": "phone",
    "mobile": "mobile",
    "mobile2": "mobile",
    "mobile3": "mobile",
    "office": "office",
}
PHONE_ALIASES: dict[str, tuple[str, ...]] = {
    "phone": ("电话", "联系电话", "电话号码", "固定电话", "座机", "telephone", "tel"),
    "phone2": ("电话2", "联系电话2", "座机2"),
    "phone3": ("电话3", "联系电话3", "座机3"),
    "mobile": ("手机", "手机号", "手机号码", "移动电话", "cell"),
    "mobile2": ("手机2", "手机号2", "手机号码2"),
    "mobile3": ("手机3", "手机号3", "手机号码3"),
    "office": ("办公电话", "单位电话", "公司电话", "office phone"),
}
KINDS = {
    "direct": "direct",
    "直销": "direct",
    "直销客户": "direct",
    "终端客户": "direct",
    "dealer": "dealer",
    "经销商": "dealer",
}


@dataclass
class CustomerRow:
    line: int
    values: dict[str, Any]
    phones: list[tuple[str, str, Phone]]
    vehicles: list[dict[str, Any]]
    headers: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # pinyin keys, computed while checking

    def problem(self, key: str, value: str, reason: str, outcome: Outcome) -> RowResult:
        return outcome, Problem(self.line, self.headers.get(key, key), value, reason, outcome)


def validate(row: RowValues, ctx: ImportContext) -> CustomerRow:
    problems = Problems(row)
    if not row.get("name"):
        problems.add("name", "the customer name is empty", "")
    values = model_fields(Customer, row, problems, {f: f for f in TEXT_FIELDS})
    if row.get("kind"):
        kind = KINDS.get(row.get("kind").lower())
        if kind is None:
            problems.add("kind", "customer type must be 直销 (direct) or 经销商 (dealer)")
        values["kind"] = kind or CustomerKind.DIRECT.value
    if row.get("vip_level"):
        vip = as_int(row.get("vip_level"))
        if vip is None or not 0 <= vip <= 9:
            problems.add("vip_level", "VIP level must be a whole number from 0 to 9")
        values["vip_level"] = vip
    phones = phones_of(row, problems, PHONE_LABELS, ctx.home_area_code)
    vehicles = []
    for slot in SLOTS:
        vehicle = vehicle_values(row, problems, slot)
        if vehicle is not None:
            vehicles.append(vehicle)
    if len({v["vin"] for v in vehicles}) < len(vehicles):
        problems.add("vin", "the same VIN is given twice in this row")
    problems.check()
    headers = {name: row.header(name) for name in ("code", "name", "phone", "mobile", "vin")}
    first_phone = next((f for f in PHONE_LABELS if row.get(f)), "phone")
    headers["phone"] = row.header(first_phone)
    return CustomerRow(row.line, values, phones, vehicles, headers, search_keys(values["name"]))


def search_keys(name: str) -> dict[str, str]:
    """The keys CustomerService.create stores (a customer's name: no surname reading)."""
    # Imported here: pypinyin's dictionaries take ~80 MB, and when rows are checked in a
    # worker process the importing process never needs them.
    from crm_core.pinyin import full_pinyin, initials

    return {"name_pinyin": full_pinyin(name), "name_initials": initials(name)}


ALIASES: dict[str, tuple[str, ...]] = {
    **TEXT_FIELDS,
    **OTHER_FIELDS,
    **PHONE_ALIASES,
    **VEHICLE_ALIASES,
}
