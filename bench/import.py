"""Customer import throughput and memory: `hotline import customers` on a generated file.

    python bench/import.py                                   # 100,000 customers, SQLite
    python bench/import.py --rows 20000 --format csv
    python bench/import.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/hotline_import_bench

Generates N customers with 1-3 phones and 1-3 vehicles each (unique VINs with correct check
digits) as an XLSX (written by openpyxl) and a CSV, then runs the real command in a child
process on a fresh database, so generating the file counts neither in the time nor in the
memory: rows/s from the command's own clock, peak RSS from the child's rusage (wait4). The CPU
seconds (command plus worker) tell more than the wall clock on a busy machine. Runs
the same file three times: a dry run, the import, and the import again (all unchanged).
Figures only: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import openpyxl

from crm_core import seed_data as vocab
from crm_core.seed import landline_patterns

ROOT = Path(__file__).resolve().parents[1]
HEADER = [
    "客户编码", "客户名称", "客户类型", "地区", "省份", "城市", "地址",
    "手机", "电话", "手机2",
    "车架号", "车牌号", "车型", "购车日期",
    "车架号2", "车牌号2", "车型2", "购车日期2",
    "车架号3", "车牌号3", "车型3", "购车日期3",
]  # fmt: skip


def vin(rng: random.Random, serial: int) -> str:
    body = "LJ1" + "".join(rng.choices(vocab.VIN_ALPHABET, k=5))
    tail = "R" + "A" + f"{serial:06d}"  # model year + plant + a serial: unique per vehicle
    return body + vocab.vin_check_digit(body + "0" + tail) + tail


def customer_rows(count: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    rows = []
    serial = 0
    for n in range(count):
        city = rng.choice(vocab.CITIES)
        name = (
            city.name + rng.choice(vocab.BRANDS) + rng.choice(vocab.TRADES)[0]
            + rng.choice(vocab.COMPANY_SUFFIXES) + f"{n % 97 or ''}"
        )  # fmt: skip
        length, lead = rng.choice(landline_patterns(city.area_code))
        local = lead + "".join(rng.choices("0123456789", k=length - 1))
        phones = [rng.choice(vocab.MOBILE_PREFIXES) + f"{n:08d}", f"{city.area_code}-{local}"]
        phones.append(rng.choice(vocab.MOBILE_PREFIXES) + f"{n + 50_000_000:08d}")
        phones = phones[: rng.randint(1, 3)] + [""] * 3
        vehicles: list[str] = []
        for _ in range(rng.randint(1, 3)):
            serial += 1
            model, _chassis = rng.choice(vocab.MODELS)
            plate = city.plate + "".join(rng.choices("0123456789ABCDEFGHJK", k=5))
            bought = f"20{rng.randint(15, 25)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            vehicles += [vin(rng, serial), plate, model, bought]
        vehicles += [""] * (12 - len(vehicles))
        rows.append(
            [f"K{n:08d}", name, "直销", city.region, city.province, city.name,
             f"{city.province}省{city.name}市{rng.choice(vocab.STREETS)}{rng.randint(1, 999)}号",
             *phones[:3], *vehicles]
        )  # fmt: skip
    return rows


def write_files(rows: list[list[str]], workdir: Path) -> tuple[Path, Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    csv_path, xlsx_path = (
        workdir / f"customers-{len(rows)}.csv",
        workdir / f"customers-{len(rows)}.xlsx",
    )
    with csv_path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("客户")
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    book.save(xlsx_path)
    return csv_path, xlsx_path


def hotline(env: dict[str, str], *args: str) -> tuple[dict[str, object], float, float]:
    """Run `hotline ARGS --json` in a child: its JSON output, its peak RSS in MB (the larger
    of the command and its row-checking worker: Linux reports the maximum over a child and
    the descendants it waited for) and the CPU seconds both used."""
    command = [sys.executable, "-m", "agent_desktop.cli", *args]
    child = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    output = child.stdout.read()
    _pid, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"hotline {' '.join(args)} failed ({child.returncode})")
    last = output.strip().splitlines()[-1] if output.strip() else "{}"
    return json.loads(last), usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def fresh_env(database_url: str | None, workdir: Path) -> dict[str, str]:
    env = dict(os.environ, HOTLINE_VAR_DIR=str(workdir / "var"))
    if database_url is None:
        path = workdir / "import-bench.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        env["DATABASE_URL"] = f"sqlite+aiosqlite:///{path}"
    else:
        env["DATABASE_URL"] = database_url
        subprocess.run(
            [sys.executable, "-c", RESET_PG, database_url], check=True, cwd=ROOT, env=env
        )
    subprocess.run(
        [sys.executable, "-m", "agent_desktop.cli", "db", "upgrade"],
        check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return env


RESET_PG = """
import asyncio, sys
import asyncpg
async def main():
    url = sys.argv[1].replace("postgresql+asyncpg://", "postgresql://")
    base, name = url.rsplit("/", 1)
    conn = await asyncpg.connect(base + "/postgres")
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
asyncio.run(main())
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="customers in the file")
    parser.add_argument("--format", choices=("xlsx", "csv", "both"), default="both")
    parser.add_argument("--database-url", help="PostgreSQL URL (the database is re-created!)")
    parser.add_argument("--workdir", default="var/bench")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    workdir = ROOT / args.workdir
    started = time.perf_counter()
    rows = customer_rows(args.rows, args.seed)
    csv_path, xlsx_path = write_files(rows, workdir)
    phones = sum(1 for r in rows for p in r[7:10] if p)
    vehicles = sum(1 for r in rows for v in r[10::4] if v)
    print(
        f"generated {len(rows):,} customers, {phones:,} phones, {vehicles:,} vehicles in "
        f"{time.perf_counter() - started:.1f}s: {xlsx_path.name} "
        f"{xlsx_path.stat().st_size / 1e6:.1f} MB, {csv_path.name} "
        f"{csv_path.stat().st_size / 1e6:.1f} MB"
    )
    backend = "postgresql" if args.database_url else "sqlite"
    files = {"xlsx": [xlsx_path], "csv": [csv_path], "both": [xlsx_path, csv_path]}[args.format]
    for path in files:
        env = fresh_env(args.database_url, workdir)
        for label, extra in (("dry run", ["--dry-run"]), ("import", []), ("again", [])):
            result, rss, cpu = hotline(env, "import", "customers", str(path), "--json", *extra)
            counts = result["counts"]
            seconds = float(result["seconds"])  # type: ignore[arg-type]
            total = int(result["rows"])  # type: ignore[call-overload]
            print(
                f"{backend:<10} {path.suffix[1:]:<4} {label:<8} {total:>8,} rows "
                f"{seconds:6.1f}s {total / seconds:8,.0f} rows/s  cpu {cpu:6.1f}s  "
                f"peak RSS {rss:6.1f} MB  "
                f"{json.dumps(counts)}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
