"""Time and memory of the data layer's building blocks on large CSVs.

Measures, in a fresh process per size, ``open_table`` (the load into DuckDB plus the count of
missing-value markers), ``Schema.infer`` and ``fingerprint`` on the CSVs of
``benchmarks/data_scale.py`` (N rows x 20 columns, about 1.5 GB at ten million rows), and the
process's peak resident memory. ``--on-disk`` forces the DuckDB database into a file (the
default keeps inputs under 2 GB in memory) to compare the two.

Usage::

    python benchmarks/data_ingest.py WORKDIR [--rows 100000 1000000 10000000] [--on-disk]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

_CHILD = """
import json, resource, sys, time
from pathlib import Path
import mlwright.data._table as table_module
if sys.argv[2] == "disk":
    table_module._ON_DISK_BYTES = 0
from mlwright.data import Schema, fingerprint, open_table
path = Path(sys.argv[1])
result = {}
start = time.perf_counter()
table = open_table(path)
result["open_table_s"] = time.perf_counter() - start
start = time.perf_counter()
schema = Schema.infer(table, target="churn")
result["schema_infer_s"] = time.perf_counter() - start
start = time.perf_counter()
fingerprint(table)
result["fingerprint_s"] = time.perf_counter() - start
table.close()
result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
result["task"] = schema.task
print(json.dumps(result))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--on-disk", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from data_scale import generate

    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| rows | file GB | open_table s | Schema.infer s | fingerprint s | peak RSS MB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for rows in args.rows:
        path = args.workdir / f"scale_{rows}.csv"
        if not path.exists():
            generate(path, rows)
        output = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), "disk" if args.on_disk else "auto"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        result = json.loads(output.strip().splitlines()[-1])
        assert result["task"] == "binary"
        print(
            f"| {rows:,} | {path.stat().st_size / 1e9:.2f} | {result['open_table_s']:.1f} | "
            f"{result['schema_infer_s']:.1f} | {result['fingerprint_s']:.1f} | "
            f"{result['peak_rss_mb']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
