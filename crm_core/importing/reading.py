"""Files to rows: CSV (UTF-8, UTF-8 with BOM, GBK/GB18030) and XLSX, streamed.

A row comes out as (the row number Excel shows, the cells as text). The header is the first
row that is not blank. The encoding of a CSV is decided from the bytes, never guessed: a BOM
means UTF-8 with BOM, a file that is valid UTF-8 throughout is UTF-8, otherwise it must be
valid GB18030 (GBK's superset, what Excel in China writes); a file that is none of these is
refused with the position of the first bad byte.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

from crm_core.importing.errors import ImportFileError
from crm_core.importing.xlsx import xlsx_rows

CHUNK = 1 << 16
MAX_CELL = 10_000  # characters; a longer cell is a broken file, not data
XLSX_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the old binary .xls
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


@dataclass
class SheetRows:
    """The header and a one-shot iterator over the data rows of one file."""

    header: list[str]
    header_row: int
    rows: Generator[tuple[int, list[str]], None, None]
    encoding: str  # "xlsx" for workbooks
    expected: int  # about how many data rows (for the progress bar)
    closer: Callable[[], None]

    def close(self) -> None:
        """Release the file, whether or not the rows were read (a generator that never
        started would not run its own clean-up)."""
        self.rows.close()
        self.closer()


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(CHUNK), b""))


def _first_bad_byte(path: Path, encoding: str) -> int | None:
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return offset + exc.start
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return offset
    return None


def detect_encoding(path: Path) -> str:
    """utf-8-sig, utf-8 or gb18030, decided from the whole file; else ImportFileError."""
    with path.open("rb") as handle:
        head = handle.read(CHUNK)
    if not head:
        raise ImportFileError(f"{path.name} is empty")
    if head.startswith(codecs.BOM_UTF8):
        bad = _first_bad_byte(path, "utf-8-sig")
        if bad is None:
            return "utf-8-sig"
        raise ImportFileError(
            f"{path.name} starts with a UTF-8 mark but byte {bad} is not UTF-8; "
            "save it again as CSV UTF-8"
        )
    if head.startswith(UTF16_BOMS):
        raise ImportFileError(
            f"{path.name} is UTF-16 text; save it as CSV UTF-8 (or CSV from Excel in China)"
        )
    if b"\x00" in head:
        raise ImportFileError(f"{path.name} is not a text file (it contains NUL bytes)")
    first_bad = _first_bad_byte(path, "utf-8")
    if first_bad is None:
        return "utf-8"
    if _first_bad_byte(path, "gb18030") is None:
        return "gb18030"
    raise ImportFileError(
        f"{path.name} is neither UTF-8 nor GBK/GB18030 text (first byte that is not UTF-8: "
        f"{first_bad}); save it as CSV UTF-8 or as .xlsx"
    )


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _is_blank(cells: list[str]) -> bool:
    return not any(c.strip() for c in cells)


def _csv_records(text: io.TextIOBase, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(text, delimiter=delimiter)
    number = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportFileError(
                f"the CSV is broken near line {reader.line_num}: {exc}", line=reader.line_num
            ) from None
        number += 1
        if any(len(c) > MAX_CELL for c in cells):
            raise ImportFileError(
                f"row {number} has a cell longer than {MAX_CELL} characters; is this really "
                "a CSV of customer data?",
                row=number,
            )
        yield number, cells


def _open_csv(path: Path) -> SheetRows:
    encoding = detect_encoding(path)
    handle = path.open("r", encoding=encoding, newline="")
    first = handle.readline()
    handle.seek(0)
    records = _csv_records(handle, _delimiter(first))
    try:
        header_row, header = _header(records, path.name)
    except BaseException:
        handle.close()
        raise
    expected = max(_count_lines(path) - header_row, 0)
    return SheetRows(header, header_row, _data(records, handle), encoding, expected, handle.close)


def _header(records: Iterator[tuple[int, list[str]]], name: str) -> tuple[int, list[str]]:
    for number, cells in records:
        if not _is_blank(cells):
            while cells and not cells[-1].strip():
                cells.pop()
            return number, [c.strip() for c in cells]
    raise ImportFileError(f"{name} has no rows at all (not even a header)")


def _data(
    records: Iterator[tuple[int, list[str]]], handle: io.IOBase
) -> Generator[tuple[int, list[str]], None, None]:
    try:
        for number, cells in records:
            if not _is_blank(cells):
                yield number, cells
    finally:
        handle.close()


def open_rows(path: Path, sheet: str | None = None) -> SheetRows:
    """The header and data rows of a CSV or XLSX file; ImportFileError if unusable."""
    if not path.is_file():
        raise ImportFileError(f"no such file: {path}")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic == XLSX_MAGIC:
        header_row, header, rows, expected, closer = xlsx_rows(path, sheet)
        return SheetRows(header, header_row, rows, "xlsx", expected, closer)
    if magic == OLE_MAGIC:
        raise ImportFileError(
            f"{path.name} is an old Excel 97-2003 (.xls) workbook; save it as .xlsx or CSV"
        )
    if sheet is not None:
        raise ImportFileError(f"{path.name} is a CSV file; it has no sheets (drop --sheet)")
    return _open_csv(path)
