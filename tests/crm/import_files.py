"""Real import files for the import tests: CSV in UTF-8, UTF-8 with BOM, GBK, and XLSX."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import openpyxl

from crm_core.seed_data import vin_check_digit

HEADER = [
    "客户编码",
    "客户名称",
    "地区",
    "城市",
    "电话",
    "手机",
    "车架号",
    "车牌号",
    "车型",
    "购车日期",
]


def vin(serial: int, body: str = "LJ1PCA2B") -> str:
    """A VIN with the right check digit (ISO 3779 / GB 16735 position 9)."""
    tail = f"RA{serial:06d}"
    return body + vin_check_digit(body + "0" + tail) + tail


def bad_check_digit(serial: int) -> str:
    good = vin(serial)
    wrong = "0" if good[8] != "0" else "1"
    return good[:8] + wrong + good[9:]


def write_csv(
    path: Path,
    rows: Sequence[Sequence[str]],
    encoding: str = "utf-8",
    header: Sequence[str] = HEADER,
) -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_xlsx(
    path: Path,
    rows: Sequence[Sequence[object]],
    header: Sequence[str] = HEADER,
    title: str = "客户",
) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    book.save(path)
    return path


def customer_rows(count: int, start: int = 0) -> list[list[str]]:
    """`count` good customers, each with a mobile and a vehicle."""
    return [
        [f"K{n:06d}", f"合肥测试物流有限公司{n}", "华东", "合肥", "", f"139{n:08d}", vin(n + 1),
         "", "", ""]
        for n in range(start, start + count)
    ]  # fmt: skip
