"""How ``mlwright profile`` and ``mlwright check`` scale with the number of rows.

Generates CSVs of N rows x 20 columns (numbers, categories of low and high cardinality, an
identifier, missing values, a binary target that depends on some columns; about 1.5 GB at ten
million rows) with DuckDB, then runs both commands as subprocesses and records wall time and
the child's CPU time and peak resident memory (``getrusage(RUSAGE_CHILDREN)`` of a wrapper
process that runs only that command, so earlier, larger runs do not mask later ones), plus the
load average, because on a shared machine wall time includes waiting for a core.

Usage::

    python benchmarks/data_scale.py WORKDIR [--rows 100000 1000000 10000000] [--keep]

Targets (issue 2): at 1e7 rows each command under 90 s wall and under 3 GB peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

TARGET = "churn"


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """Write the benchmark CSV with DuckDB (streams; never holds the file in memory)."""
    import duckdb

    connection = duckdb.connect()
    connection.execute("SET enable_progress_bar = false")
    connection.execute(f"SELECT setseed({seed / 100})")
    query = f"""
        SELECT
            range AS customer_id,
            round(random() * 100, 4) AS tenure_months,
            round(20 + random() * 100, 4) AS monthly_charges,
            CASE WHEN random() < 0.05 THEN NULL ELSE round(random() * 8000, 4) END
                AS total_charges,
            round(-ln(random() + 1e-12) * 3, 5) AS support_hours,
            round(random() * random() * 1000, 4) AS data_gb,
            CASE WHEN random() < 0.1 THEN NULL ELSE round(30 + random() * 50, 2) END
                AS age,
            round(sqrt(-2 * ln(random() + 1e-12)) * cos(6.283185 * random()), 6) AS score_a,
            round(sqrt(-2 * ln(random() + 1e-12)) * cos(6.283185 * random()) * 10 + 50, 5)
                AS score_b,
            (random() * 5)::INTEGER AS complaints,
            (random() * 10)::INTEGER AS lines,
            (random() * 3)::INTEGER AS contract_years,
            ['month-to-month', 'one year', 'two year'][1 + (random() * 2.999)::INTEGER]
                AS contract,
            ['DSL', 'fiber', 'none', 'cable', 'satellite'][1 + (random() * 4.999)::INTEGER]
                AS internet,
            'sales_region_' || (random() * 19.999)::INTEGER AS region,
            CASE WHEN random() < 0.2 THEN NULL
                 ELSE 'tariff_plan_' || (random() * 99.999)::INTEGER END AS plan,
            'city_' || (random() * 9999.999)::INTEGER AS city,
            CASE WHEN random() < 0.5 THEN 'yes' ELSE 'no' END AS paperless,
            ['credit card', 'bank transfer', 'paper check', 'voucher code']
                [1 + (random() * 3.999)::INTEGER] AS payment,
            CASE WHEN random() < 0.25 THEN 'yes' ELSE 'no' END AS {TARGET}
        FROM range({rows})
    """
    connection.execute(f"COPY ({query}) TO '{path.as_posix()}' (HEADER, DELIMITER ',')")
    connection.close()


def measure(command: list[str]) -> dict:
    """Run ``command`` in a fresh wrapper process; return wall seconds, peak RSS, exit code."""
    wrapper = (
        "import resource, subprocess, sys, time, json\n"
        "start = time.perf_counter()\n"
        "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL,"
        " stderr=subprocess.PIPE).returncode\n"
        "wall = time.perf_counter() - start\n"
        "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(json.dumps({'seconds': wall, 'cpu_seconds': usage.ru_utime + usage.ru_stime,"
        " 'peak_rss_mb': usage.ru_maxrss / 1024, 'exit_code': code}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", wrapper, *command], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", type=Path, help="Folder for the generated CSVs and outputs.")
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--keep", action="store_true", help="Keep the generated CSVs.")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = []
    for rows in args.rows:
        path = args.workdir / f"scale_{rows}.csv"
        if not path.exists():
            start = time.perf_counter()
            generate(path, rows)
            print(
                f"generated {path} ({path.stat().st_size / 1e6:.0f} MB) in "
                f"{time.perf_counter() - start:.1f} s",
                flush=True,
            )
        size_mb = path.stat().st_size / 1e6
        commands = {
            "profile": [
                sys.executable,
                "-m",
                "mlwright",
                "profile",
                str(path),
                "--target",
                TARGET,
                "--output",
                str(args.workdir / f"profile_{rows}"),
            ],
            "check": [
                sys.executable,
                "-m",
                "mlwright",
                "check",
                str(path),
                "--target",
                TARGET,
                "--json",
            ],
        }
        for name, command in commands.items():
            load_before = os.getloadavg()[0]
            figures = measure(command)
            row = {
                "command": name,
                "rows": rows,
                "csv_mb": round(size_mb),
                **figures,
                # The machine is shared: a load average above the 2 cores means the wall time
                # includes waiting for CPU; cpu_seconds (user + system, all threads) does not.
                "load_average": round((load_before + os.getloadavg()[0]) / 2, 1),
            }
            results.append(row)
            print(json.dumps(row), flush=True)
        if not args.keep:
            path.unlink()
    print()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print("| command | rows | CSV (MB) | wall (s) | CPU (s) | peak RSS (MB) | load avg | exit |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in results:
        print(
            f"| {row['command']} | {row['rows']:,} | {row['csv_mb']} | {row['seconds']:.1f} | "
            f"{row['cpu_seconds']:.1f} | {row['peak_rss_mb']:.0f} | {row['load_average']} | "
            f"{row['exit_code']} |"
        )


if __name__ == "__main__":
    main()
