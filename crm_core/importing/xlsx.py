"""XLSX rows: the workbook read by openpyxl (read-only), the sheet's XML streamed.

openpyxl reads the workbook: its sheets, shared strings, which cell styles are dates, the
date epoch. Its own read-only cell parser costs about 11 µs a cell (100k rows of 20 columns:
20 s, the whole import budget), so the sheet's XML is read here with expat, chunk by chunk
from the zip, at a fifth of the cost. Tests hold it to openpyxl's `iter_rows` (kept here as
the reference, `fast=False`) on the same files.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Generator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from xml.parsers import expat

import openpyxl
from openpyxl.reader.excel import ExcelReader
from openpyxl.styles.stylesheet import apply_stylesheet
from openpyxl.utils.datetime import from_excel
from openpyxl.utils.exceptions import InvalidFileException

from crm_core.importing.errors import ImportFileError

CHUNK = 1 << 16
DIMENSION = re.compile(r"<(?:\w+:)?dimension\s+ref=\"[A-Z]+\d+:[A-Z]+(\d+)\"")
Rows = Generator[tuple[int, list[str]], None, None]


def cell_text(value: Any) -> str:
    """A cell value as the text a person sees: 13905581234.0 → "13905581234", dates ISO."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e17 else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta | time):
        return str(value)
    return str(value)


def _number_text(text: str, style: int, dates: Any, epoch: datetime) -> str:
    try:
        number: float = float(text) if ("." in text or "E" in text or "e" in text) else int(text)
    except ValueError:
        return text
    if style in dates:
        try:
            return cell_text(from_excel(number, epoch))
        except (OverflowError, ValueError):
            return text
    return cell_text(number)


def _column(ref: str) -> int:
    n = 0
    for ch in ref:
        code = ord(ch)
        if 65 <= code <= 90:
            n = n * 26 + code - 64
        else:
            break
    return n


class _SheetParser:
    """Expat callbacks that collect finished rows as (row number, {column: text})."""

    def __init__(self, shared: Any, dates: Any, epoch: datetime) -> None:
        self.shared, self.dates, self.epoch = shared, dates, epoch
        self.done: list[tuple[int, list[str]]] = []
        self.row: dict[int, str] = {}
        self.row_number = 0
        self.col = 0
        self.kind = "n"
        self.style = 0
        self.text: list[str] = []
        self.collect = False
        self.phonetic = 0
        self.names: dict[str, str] = {}

    def local(self, name: str) -> str:
        found = self.names.get(name)
        if found is None:
            found = self.names[name] = name.rpartition(":")[2]
        return found

    def start(self, name: str, attrs: dict[str, str]) -> None:
        tag = self.local(name)
        if tag == "c":
            ref = attrs.get("r")
            self.col = _column(ref) if ref else self.col + 1
            self.kind = attrs.get("t", "n")
            style = attrs.get("s")
            self.style = int(style) if style else 0
            self.text.clear()
        elif tag in ("v", "t"):
            self.collect = not self.phonetic
        elif tag == "row":
            ref = attrs.get("r")
            self.row_number = int(float(ref)) if ref else self.row_number + 1
            self.row = {}
            self.col = 0
        elif tag == "rPh":
            self.phonetic += 1

    def end(self, name: str) -> None:
        tag = self.local(name)
        if tag in ("v", "t"):
            self.collect = False
        elif tag == "c":
            if self.text:
                self.row[self.col] = self.value("".join(self.text))
        elif tag == "row":
            if self.row:
                width = max(self.row)
                cells = [""] * width
                for col, text in self.row.items():
                    cells[col - 1] = text
                self.done.append((self.row_number, cells))
        elif tag == "rPh":
            self.phonetic -= 1

    def data(self, text: str) -> None:
        if self.collect:
            self.text.append(text)

    def value(self, text: str) -> str:
        kind = self.kind
        if kind == "s":
            return cell_text(self.shared[int(text)])
        if kind == "n":
            return _number_text(text, self.style, self.dates, self.epoch)
        if kind == "b":
            return "TRUE" if text.strip() == "1" else "FALSE"
        return text


class _WorkbookIndex(ExcelReader):
    """openpyxl's own reader in read-only mode, for what the sheets need: the sheet list,
    the shared strings, the styles (which are dates) and the epoch.

    Not `load_workbook`: in read-only mode it builds every sheet, and each one scans its
    whole XML for a size when the file has no <dimension> (openpyxl's own write-only files
    have none): 20 s for a 100k-row sheet before the first row is read."""

    def read(self) -> None:
        self.read_manifest()
        self.read_strings()
        self.read_workbook()
        apply_stylesheet(self.archive, self.wb)
        self.sheets: list[tuple[str, str]] = [
            (sheet.name, rel.target)
            for sheet, rel in self.parser.find_sheets()
            if rel.target in self.valid_files and "chartsheet" not in rel.Type
        ]


def _open(path: Path) -> _WorkbookIndex:
    try:
        index = _WorkbookIndex(path, read_only=True, data_only=True)
        index.read()
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise ImportFileError(
            f"{path.name} is not a readable .xlsx workbook ({type(exc).__name__}: {exc})"
        ) from None
    return index


def _sheet(index: _WorkbookIndex, name: str | None, path: Path) -> tuple[str, str]:
    if not index.sheets:
        raise ImportFileError(f"{path.name} has no worksheet")
    if name is None:
        return index.sheets[0]
    for title, target in index.sheets:
        if title == name:
            return title, target
    raise ImportFileError(
        f"{path.name} has no sheet named {name!r}; its sheets: "
        + ", ".join(repr(title) for title, _ in index.sheets),
        sheets=[title for title, _ in index.sheets],
    )


def _expected_rows(index: _WorkbookIndex, target: str) -> int:
    """About how many rows: the <dimension> if the sheet starts with one, else the XML's
    size over the size of its first rows."""
    size = index.archive.getinfo(target).file_size
    with index.archive.open(target) as source:
        head = source.read(CHUNK).decode("utf-8", "replace")
    found = DIMENSION.search(head)
    if found:
        return int(found[1])
    rows = head.count("<row ") + head.count("<x:row ")
    return size * rows // max(len(head), 1)


def _fast_rows(index: _WorkbookIndex, target: str) -> Rows:
    # Style ids whose number format is a date: filled by apply_stylesheet (not in the stubs).
    dates = getattr(index.wb, "_date_formats", {})
    handler = _SheetParser(index.shared_strings, dates, index.wb.epoch)
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.StartElementHandler = handler.start
    parser.EndElementHandler = handler.end
    parser.CharacterDataHandler = handler.data
    with index.archive.open(target) as source:
        while chunk := source.read(CHUNK):
            parser.Parse(chunk, False)
            yield from handler.done
            handler.done.clear()
        parser.Parse(b"", True)
        yield from handler.done


def _openpyxl_rows(path: Path, title: str) -> Rows:
    """openpyxl's own read-only cell reader: the reference the fast one is tested against."""
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        sheet: Any = book[title]
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = [cell_text(v) for v in row]
            while cells and not cells[-1]:
                cells.pop()
            if cells:
                yield number, cells
    finally:
        book.close()


def xlsx_rows(
    path: Path, sheet_name: str | None, *, fast: bool = True
) -> tuple[int, list[str], Rows, int, Callable[[], None]]:
    """(header row number, header, data rows, about how many data rows, close)."""
    index = _open(path)
    try:
        title, target = _sheet(index, sheet_name, path)
        expected = _expected_rows(index, target)
        rows = _fast_rows(index, target) if fast else _openpyxl_rows(path, title)
        rows = _guarded(rows, path)
        for number, cells in rows:
            if any(c.strip() for c in cells):
                header = [c.strip() for c in cells]
                data = _closing(rows, index.archive.close)
                return number, header, data, max(expected - number, 0), index.archive.close
    except BaseException:
        index.archive.close()
        raise
    index.archive.close()
    raise ImportFileError(f"sheet {title!r} of {path.name} is empty (not even a header)")


def _guarded(rows: Rows, path: Path) -> Rows:
    try:
        yield from rows
    except (expat.ExpatError, zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ImportFileError(f"{path.name} is damaged ({type(exc).__name__}: {exc})") from None


def _closing(rows: Rows, close: Callable[[], None]) -> Rows:
    try:
        for number, cells in rows:
            if any(c.strip() for c in cells):
                yield number, cells
    finally:
        rows.close()
        close()
