"""A call report as a table: the columns (with their translatable headers), CSV and XLSX."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from openpyxl import Workbook

from cti.kpi_report import KpiReport, KpiRow

# (field of KpiRow.figures(), English header; zh_CN in agent_desktop/i18n)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("offered", "Offered"),
    ("answered", "Answered"),
    ("abandoned", "Abandoned"),
    ("short_abandoned", "Short abandons"),
    ("service_level", "Service level %"),
    ("answer_rate", "Answer rate %"),
    ("abandon_rate", "Abandon rate %"),
    ("asa", "ASA (s)"),
    ("aht", "AHT (s)"),
    ("talk", "Talk (s)"),
    ("hold", "Hold (s)"),
    ("wrapup", "Wrap-up (s)"),
    ("longest_wait", "Longest wait (s)"),
    ("average_abandon_time", "Average time to abandon (s)"),
    ("callback_exits", "Callback exits"),
    ("voicemails", "Voicemails"),
    ("callbacks_requested", "Callbacks requested"),
    ("callbacks_completed", "Callbacks completed"),
    ("surveyed", "Survey answers"),
    ("survey_average", "Survey average"),
)
GROUP_HEADERS = {"queue": "Queue", "agent": "Agent", "hour": "Hour", "day": "Day"}


def row_label(row: KpiRow, grouping: str, _: Callable[..., str]) -> str:
    if row.key == "total":
        return _("Total")
    if grouping == "agent" and not row.key:
        return _("No agent (not answered)")
    return row.label


def table(
    report: KpiReport, _: Callable[..., str], disposition_labels: dict[str, str]
) -> list[list[Any]]:
    """Header row, one row per group, then the total; dispositions as trailing columns."""
    codes = sorted(report.total.dispositions)
    header = [_(GROUP_HEADERS[report.grouping])] + [_(title) for _key, title in COLUMNS]
    header += [f"{_('Disposition')}: {disposition_labels.get(c, c)}" for c in codes]
    rows: list[list[Any]] = [header]
    for row in [*report.rows, report.total]:
        figures = row.figures()
        line = [row_label(row, report.grouping, _)] + [figures[key] for key, _t in COLUMNS]
        rows.append(line + [row.dispositions.get(c, 0) for c in codes])
    return rows


def to_csv(rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    # The byte-order mark makes Excel read the Chinese headers as UTF-8.
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(rows: list[list[Any]], title: str) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
