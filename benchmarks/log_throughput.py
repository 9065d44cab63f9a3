"""Throughput cost of the durable prediction log: wrk, durable against ``--log-buffered``.

Usage::

    python benchmarks/log_throughput.py ../shared/bench/data [--model DIR] [--duration 10]
        [--rounds 4] [--connections 16] [--results benchmarks/RESULTS.md]

Two servers of the same adult model (LightGBM; trained first without ``--model``), each with
its own SQLite prediction log: the default, durable (an answer waits for the commit of its
record; requests arriving during one write share the next), and ``--log-buffered`` (answered at
once, written behind). wrk sends single-row ``POST /predict`` requests back to back over
``--connections`` keep-alive connections (one wrk thread). Rounds alternate between the two
servers, so that drifting machine load hits both, each after a short unmeasured warm-up. Per
mode: the median requests/s of the rounds, every round's figure, wrk's failures (non-2xx and
socket errors), the p50/p99 latency of the median round, and, after both servers stopped, the
rows in each log against the requests wrk completed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

# benchmarks/serve.py: a real server, wrk's throughput, the log's row count, training adult.
from serve import _count_log, fixed_rate_rest, mlwright_server, train_adult, wrk_throughput

MODES = {"durable": (), "buffered": ("--log-buffered",)}


def measure(model: Path, work: Path, args: argparse.Namespace) -> dict:
    test = pd.read_csv(args.suite / "adult" / "test.csv").drop(columns=["income"])
    records = json.loads(test.sample(200, random_state=0).to_json(orient="records"))
    bodies = [json.dumps({"records": [record]}).encode() for record in records]
    home = work / ".mlwright"
    load_before = os.getloadavg()[0]
    rounds: dict[str, list[dict]] = {mode: [] for mode in MODES}
    logs = {mode: work / f"predictions-{mode}.db" for mode in MODES}
    with (
        mlwright_server(model, home, log=f"sqlite:///{logs['durable']}") as durable,
        mlwright_server(
            model, home, log=f"sqlite:///{logs['buffered']}", extra=MODES["buffered"]
        ) as buffered,
    ):
        ports = {"durable": durable.port, "buffered": buffered.port}
        for _ in range(args.rounds):
            for mode, port in ports.items():
                fixed_rate_rest(port, "/predict", bodies, 500, 1.0)  # warm-up, not measured
                rounds[mode].append(
                    wrk_throughput(port, "/predict", bodies, args.duration, args.connections)
                )
    result: dict = {"load_before": load_before}
    for mode, measured in rounds.items():
        rates = [item["rps"] for item in measured]
        middle = sorted(measured, key=lambda item: item["rps"])[len(measured) // 2]
        result[mode] = {
            "median_rps": statistics.median(rates),
            "rounds_rps": rates,
            "failures": sum(item["failures"] for item in measured),
            "tool": measured[0]["tool"],
            "p50_ms": middle.get("p50_ms"),
            "p99_ms": middle.get("p99_ms"),
            "requests": sum(item.get("requests", 0) for item in measured),
            # Warm-up requests are logged too: 500/s for 1 s before each round.
            "logged_rows": _count_log(logs[mode]),
        }
    result["ratio"] = result["durable"]["median_rps"] / result["buffered"]["median_rps"]
    return result


def markdown(result: dict, args: argparse.Namespace) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## Durable prediction log: throughput at {args.connections} connections — {stamp}",
        "",
        f"`python benchmarks/log_throughput.py {args.suite} --duration {args.duration:g} "
        f"--rounds {args.rounds} --connections {args.connections}` on {platform.machine()}, "
        f"{os.cpu_count()} cores (Python {platform.python_version()}); adult, LightGBM, "
        f"single-row `POST /predict`, {result['durable']['tool']} back to back on the same "
        "machine, SQLite log, rounds alternating between the two servers; load average "
        f"{result['load_before']:.1f} before, {os.getloadavg()[0]:.1f} after (a shared "
        "machine). Logged rows include the 500 warm-up requests of each round and the "
        "requests still in flight when wrk stopped counting.",
        "",
        "| log | requests/s (median of rounds) | rounds | failures | p50 / p99 (median round) "
        "| logged rows / requests wrk counted |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for mode in MODES:
        item = result[mode]
        latency = (
            f"{item['p50_ms']:.2f} / {item['p99_ms']:.2f} ms" if item["p50_ms"] is not None else "–"
        )
        lines.append(
            f"| {mode} | {item['median_rps']:,.0f} | "
            f"{', '.join(f'{rate:,.0f}' for rate in item['rounds_rps'])} | {item['failures']} | "
            f"{latency} | {item['logged_rows']:,} / {item['requests']:,} |"
        )
    lines += ["", f"Durable / buffered throughput: {result['ratio']:.2f}.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("suite", type=Path, help="The benchmark suite folder (holds adult/).")
    parser.add_argument("--model", type=Path, help="A trained adult model (else trains one).")
    parser.add_argument("--duration", type=float, default=10.0, help="Seconds per round.")
    parser.add_argument("--rounds", type=int, default=4, help="Rounds per mode.")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections.")
    parser.add_argument("--results", type=Path, help="Append a section to this Markdown file.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlwright-log-throughput-") as folder:
        work = Path(folder)
        model = args.model or train_adult(args.suite, work / "adult-model", work / ".mlwright")
        result = measure(model, work, args)
    print(json.dumps(result, indent=2))
    table = markdown(result, args)
    print(table)
    if args.results is not None:
        with args.results.open("a", encoding="utf-8") as handle:
            handle.write("\n" + table)


if __name__ == "__main__":
    main()
