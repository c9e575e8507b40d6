"""Reading import files: encodings, XLSX, headers and mapping files, and the clear errors
for files that cannot be imported at all."""

from __future__ import annotations

import codecs
from pathlib import Path

import openpyxl
import pytest
from import_files import HEADER, customer_rows, write_csv, write_xlsx

from crm_core.importing import get_kind
from crm_core.importing.errors import ImportFileError, MappingFileError, MissingColumn
from crm_core.importing.mapping import load_mapping_file, map_columns
from crm_core.importing.reading import detect_encoding, open_rows
from crm_core.importing.xlsx import xlsx_rows

ROWS = [
    ["K1", "合肥江淮运输有限公司", "华东", "合肥", "0551-62123456", "13905581234", "", "", "", ""]
]


@pytest.mark.parametrize(
    ("encoding", "detected"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gbk", "gb18030"), ("gb18030", "gb18030")],
)
def test_csv_encodings_are_detected_and_read(tmp_path: Path, encoding: str, detected: str) -> None:
    path = write_csv(tmp_path / "c.csv", ROWS, encoding=encoding)
    assert detect_encoding(path) == detected
    source = open_rows(path)
    assert source.header == HEADER
    assert list(source.rows) == [(2, ROWS[0])]


def test_xlsx_rows_match_openpyxl_own_reader(tmp_path: Path) -> None:
    # Numbers, dates, empty cells in the middle, a shared-strings workbook (openpyxl's normal
    # writer) and the inline strings of its write-only mode.
    from datetime import date

    rows = [
        [
            "K1",
            "合肥江淮运输有限公司",
            None,
            "合肥",
            None,
            13905581234,
            "",
            None,
            None,
            date(2021, 3, 4),
        ],
        ["K2", "张三", "华东", None, "0551-62123456", 13805571234.0, None, None, "HFC1041", None],
    ]
    normal = write_xlsx(tmp_path / "n.xlsx", rows)
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("客户")
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    book.save(tmp_path / "w.xlsx")
    for path in (normal, tmp_path / "w.xlsx"):
        fast = xlsx_rows(path, None)
        slow = xlsx_rows(path, None, fast=False)
        assert fast[1] == slow[1] == HEADER
        fast_rows = [(n, _trim(c)) for n, c in fast[2]]
        assert fast_rows == [(n, _trim(c)) for n, c in slow[2]]
        assert fast_rows[0][1][5] == "13905581234" and fast_rows[0][1][9] == "2021-03-04"
        assert fast_rows[1][1][5] == "13805571234"


def _trim(cells: list[str]) -> list[str]:
    while cells and not cells[-1]:
        cells = cells[:-1]
    return cells


def test_headers_chinese_english_and_decorated() -> None:
    kind = get_kind("customers")
    headers = ["客户名称*", "Phone", "手机号码", "车架号(VIN)", "车牌号2", "备注"]
    columns = map_columns(headers, kind.aliases, kind.required)
    assert columns.columns == {"name": 0, "phone": 1, "mobile": 2, "vin": 3, "plate2": 4}
    assert columns.unknown == ["备注"]


def test_missing_required_column_names_it() -> None:
    kind = get_kind("customers")
    with pytest.raises(MissingColumn, match="客户名称"):
        map_columns(["电话", "地址"], kind.aliases, kind.required)
    with pytest.raises(MissingColumn, match="both mean"):
        map_columns(["客户名称", "电话", "联系电话"], kind.aliases, kind.required)


def test_mapping_file_overrides_and_ignores(tmp_path: Path) -> None:
    kind = get_kind("customers")
    mapping = tmp_path / "map.toml"
    mapping.write_text('[columns]\n"客户全称" = "name"\n"备注" = ""\n', encoding="utf-8")
    overrides = load_mapping_file(mapping, kind.fields)
    columns = map_columns(["客户全称", "备注", "手机"], kind.aliases, kind.required, overrides)
    assert columns.columns == {"name": 0, "mobile": 2} and columns.unknown == []
    mapping.write_text('[columns]\n"客户全称" = "nmae"\n', encoding="utf-8")
    with pytest.raises(MappingFileError, match="not a field"):
        load_mapping_file(mapping, kind.fields)
    mapping.write_text("columns = [", encoding="utf-8")
    with pytest.raises(MappingFileError, match="not valid TOML"):
        load_mapping_file(mapping, kind.fields)


def test_bad_files_get_clear_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(ImportFileError, match="empty"):
        open_rows(empty)
    blank = tmp_path / "blank.csv"
    blank.write_text("\n,,\n\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="no rows"):
        open_rows(blank)
    junk = tmp_path / "junk.csv"
    junk.write_bytes(bytes(range(256)) * 20)
    with pytest.raises(ImportFileError, match="not a text file"):
        open_rows(junk)
    neither = tmp_path / "neither.csv"
    neither.write_bytes("客户名称\n".encode() + b"\xff\xfe\x80\x80abc\n")
    with pytest.raises(ImportFileError, match="neither UTF-8 nor GBK"):
        open_rows(neither)
    utf16 = tmp_path / "u16.csv"
    utf16.write_bytes(codecs.BOM_UTF16_LE + "客户名称\n".encode("utf-16-le"))
    with pytest.raises(ImportFileError, match="UTF-16"):
        open_rows(utf16)
    xls = tmp_path / "old.xls"
    xls.write_bytes(b"\xd0\xcf\x11\xe0" + b"\x00" * 100)
    with pytest.raises(ImportFileError, match="97-2003"):
        open_rows(xls)
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04" + b"junk" * 50)
    with pytest.raises(ImportFileError, match=r"not a readable \.xlsx"):
        open_rows(broken)


def test_wrong_sheet_and_empty_sheet(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "c.xlsx", customer_rows(2), title="客户")
    with pytest.raises(ImportFileError, match=r"no sheet named .车辆.*.客户."):
        open_rows(path, "车辆")
    assert open_rows(path, "客户").header == HEADER
    book = openpyxl.Workbook()
    book.save(tmp_path / "e.xlsx")
    with pytest.raises(ImportFileError, match="empty"):
        open_rows(tmp_path / "e.xlsx")
    with pytest.raises(ImportFileError, match="no sheets"):
        open_rows(write_csv(tmp_path / "c.csv", ROWS), "客户")
