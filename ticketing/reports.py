"""Reports: requests by region, category and status; mean and 90th-percentile times to
dispatch and to complete; satisfaction by region and technician; SLA breaches.

Computed in Python over the period's rows, so the same code runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select

from crm_core.db import Database
from ticketing.models import FollowUp, ServiceRequest, SlaBreach, WorkOrder


def _p90(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def _hours(pairs: Iterable[tuple[datetime, datetime | None]]) -> dict[str, float | None]:
    values = [(end - start).total_seconds() / 3600 for start, end in pairs if end is not None]
    mean = sum(values) / len(values) if values else None
    return {
        "count": len(values),
        "mean_hours": round(mean, 2) if mean is not None else None,
        "p90_hours": round(p, 2) if (p := _p90(values)) is not None else None,
    }


async def ticket_report(db: Database, since: datetime, until: datetime) -> dict[str, Any]:
    async with db.transaction() as s:
        requests = (
            await s.scalars(
                select(ServiceRequest).where(
                    ServiceRequest.created_at >= since, ServiceRequest.created_at < until
                )
            )
        ).all()
        ids = [r.id for r in requests]
        scored = (
            await s.execute(
                select(FollowUp.request_id, FollowUp.score).where(
                    FollowUp.request_id.in_(ids), FollowUp.score.is_not(None)
                )
            )
        ).all()
        finishers = (
            await s.execute(
                select(WorkOrder.request_id, WorkOrder.technician_id).where(
                    WorkOrder.request_id.in_(ids), WorkOrder.state == "done"
                )
            )
        ).all()
        breaches = (await s.scalars(select(SlaBreach).where(SlaBreach.request_id.in_(ids)))).all()
    by_id = {r.id: r for r in requests}
    tech_of = dict(finishers)
    by_region: dict[str, list[int]] = defaultdict(list)
    by_tech: dict[str, list[int]] = defaultdict(list)
    for request_id, score in scored:
        if score is None:
            continue
        by_region[by_id[request_id].region or "-"].append(score)
        by_tech[str(tech_of.get(request_id, "-"))].append(score)
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "counts": [
            {"region": k[0], "category": k[1], "state": k[2], "count": n}
            for k, n in sorted(
                Counter((r.region or "-", r.category, r.state) for r in requests).items()
            )
        ],
        "time_to_dispatch": _hours((r.created_at, r.dispatched_at) for r in requests),
        "time_to_complete": _hours((r.created_at, r.completed_at) for r in requests),
        "satisfaction_by_region": _averages(by_region),
        "satisfaction_by_technician": _averages(by_tech),
        "sla_breaches": [
            {"kind": k, "count": n} for k, n in sorted(Counter(b.kind for b in breaches).items())
        ],
    }


def _averages(groups: dict[str, list[int]]) -> list[dict[str, Any]]:
    return [
        {"key": key, "count": len(scores), "mean": round(sum(scores) / len(scores), 2)}
        for key, scores in sorted(groups.items())
    ]


def report_csv(report: dict[str, Any]) -> str:
    """One CSV with a `section` column, so every table of the report travels in one file."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "key", "subkey", "state", "count", "mean", "p90"])
    for row in report["counts"]:
        writer.writerow(["requests", row["region"], row["category"], row["state"], row["count"]])
    for name in ("time_to_dispatch", "time_to_complete"):
        item = report[name]
        writer.writerow([name, "", "", "", item["count"], item["mean_hours"], item["p90_hours"]])
    for name in ("satisfaction_by_region", "satisfaction_by_technician"):
        for row in report[name]:
            writer.writerow([name, row["key"], "", "", row["count"], row["mean"], ""])
    for row in report["sla_breaches"]:
        writer.writerow(["sla_breaches", row["kind"], "", "", row["count"], "", ""])
    return out.getvalue()
