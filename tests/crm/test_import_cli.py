"""`hotline import` as a user runs it: a real subprocess, its output and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from import_files import HEADER, customer_rows, write_csv, write_xlsx

from crm_core.db import Database
from crm_core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def hotline(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": settings.database_url, "HOTLINE_VAR_DIR": settings.var_dir}
    return subprocess.run(
        [sys.executable, "-m", "agent_desktop.cli", "import", *args],
        capture_output=True, text=True, env=env, timeout=120, check=False, cwd=ROOT,
    )  # fmt: skip


def test_dry_run_import_json_and_report(settings: Settings, db: Database, tmp_path: Path) -> None:
    rows = customer_rows(3)
    rows[1][1] = ""  # no name
    path = write_xlsx(tmp_path / "客户.xlsx", rows, header=[*HEADER[:9], "备注"])
    dry = hotline(settings, "customers", str(path), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "dry run, nothing written" in dry.stdout
    assert "new                2" in dry.stdout and "invalid            1" in dry.stdout
    assert "columns not imported (not understood): 备注" in dry.stdout
    assert "error report:" in dry.stdout
    report = tmp_path / "errors.csv"
    real = hotline(settings, "customers", str(path), "--json", "--report", str(report))
    result = json.loads(real.stdout)
    assert result["counts"] == {
        "new": 2,
        "updated": 0,
        "unchanged": 0,
        "duplicate": 0,
        "invalid": 1,
    }
    assert result["report"] == str(report)
    assert "3,客户名称,,invalid,the customer name is empty" in report.read_text("utf-8-sig")
    again = json.loads(hotline(settings, "customers", str(path), "--json").stdout)
    assert again["counts"]["unchanged"] == 2 and again["counts"]["new"] == 0


def test_bad_input_is_a_message_not_a_traceback(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.csv"
    junk.write_bytes(os.urandom(4096) + b"\x00")
    missing = write_csv(tmp_path / "m.csv", [["x"]], header=["地址"])
    mapping = tmp_path / "map.toml"
    mapping.write_text('[columns]\n"地址" = "adress"\n', encoding="utf-8")
    for args, message in (
        ((str(junk),), "is not a text file"),
        ((str(missing),), "no column for 客户名称"),
        ((str(missing), "--mapping", str(mapping)), "'adress' is not a field"),
        ((str(tmp_path / "nope.csv"),), "no such file"),
        ((str(write_xlsx(tmp_path / "x.xlsx", [])), "--sheet", "车辆"), "no sheet named"),
    ):
        done = hotline(settings, "customers", *args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr, done.stderr
