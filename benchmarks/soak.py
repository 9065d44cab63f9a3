"""Soak: a fixed request rate against a real ``mlwright serve`` for a while, on loopback.

Usage::

    python benchmarks/soak.py [--model DIR] [--duration 120] [--rate 200] [--warmup 10]
        [--threads 8] [--log-buffered] [--results benchmarks/RESULTS.md]

Without ``--model`` a LightGBM model is trained on credit-g first (``--max-trials 1``). The
server logs to SQLite in a temporary home. Client threads (httpx, one keep-alive connection
each) send single-row ``POST /predict`` requests on a fixed schedule (open loop: a late request
is sent at once, not skipped), each with its own ``X-Request-ID``. Reported:

* the rate achieved, errors (any status but 200, or a transport error), p50/p99/max latency
  as the client measured it, over the whole run after warm-up;
* the server's resident memory (``VmRSS`` in ``/proc/PID/status``) right after warm-up and at
  the end, and their ratio (the issue asks for the end within 10% of the start);
* the log's completeness: every acknowledged request id is looked up in the predictions table
  while the server still runs (with the durable log, the default, an answered request is
  already logged), and again after a graceful stop.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pandas as pd

from serve import mlwright_server  # benchmarks/serve.py: start and stop a real server

ROOT = Path(__file__).resolve().parents[1]
CREDIT = ROOT / "examples" / "credit-g"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def train_model(folder: Path) -> Path:
    output = folder / "credit"
    subprocess.run(
        [sys.executable, "-m", "mlwright", "train", str(CREDIT / "train.csv"), "--target",
         "class", "--models", "lightgbm", "--max-trials", "1", "--output", str(output),
         "--no-track", "--quiet"],
        check=True,
        env=dict(os.environ, MLWRIGHT_HOME=str(folder / ".mlwright")),
    )  # fmt: skip
    return output


def run_load(url: str, records: list[dict], rate: float, seconds: float, threads: int) -> dict:
    """Send ``rate`` requests/s for ``seconds``; return latencies, errors and answered ids."""
    per_thread = rate / threads
    results: list[list[tuple[float, float, str | None]]] = [[] for _ in range(threads)]
    start = time.perf_counter() + 0.05

    def worker(index: int) -> None:
        count = int(per_thread * seconds)
        with httpx.Client(timeout=30) as client:
            for number in range(count):
                due = start + (number + index / threads) / per_thread
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                request_id = f"soak-{index}-{number}"
                record = records[(number * threads + index) % len(records)]
                sent = time.perf_counter()
                try:
                    answer = client.post(
                        f"{url}/predict",
                        json={"records": [record]},
                        headers={"x-request-id": request_id},
                    )
                    ok = answer.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latency = time.perf_counter() - sent
                results[index].append((sent, latency, request_id if ok else None))

    pool = [threading.Thread(target=worker, args=(index,)) for index in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    flat = [item for part in results for item in part]
    elapsed = max(sent + latency for sent, latency, _ in flat) - start
    latencies = sorted(latency * 1000 for _, latency, _ in flat)
    answered = [request_id for _, _, request_id in flat if request_id is not None]
    return {
        "requests": len(flat),
        "errors": len(flat) - len(answered),
        "rate": len(flat) / elapsed,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(0.99 * (len(latencies) - 1))],
        "max_ms": latencies[-1],
        "answered": answered,
    }


def logged_ids(database: Path) -> set[str]:
    connection = sqlite3.connect(database, timeout=30)
    try:
        rows = connection.execute(
            "SELECT DISTINCT request_id FROM predictions WHERE request_id LIKE 'soak-%'"
        ).fetchall()
    finally:
        connection.close()
    return {row[0] for row in rows}


def soak(model: Path, home: Path, args: argparse.Namespace) -> dict:
    records = json.loads(
        pd.read_csv(CREDIT / "test.csv").drop(columns=["class"]).to_json(orient="records")
    )
    database = home / "predictions.db"
    extra = ("--log-buffered",) if args.log_buffered else ()
    with mlwright_server(model, home, log=f"sqlite:///{database}", extra=extra) as served:
        url = f"http://127.0.0.1:{served.port}"
        warm = run_load(url, records, args.rate, args.warmup, args.threads)
        rss_start = rss_kib(served.pid)
        samples: list[int] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(1.0):
                with contextlib.suppress(OSError, RuntimeError):
                    samples.append(rss_kib(served.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        result = run_load(url, records, args.rate, args.duration, args.threads)
        stop.set()
        sampler.join()
        rss_end = rss_kib(served.pid)
        answered = set(warm["answered"]) | set(result["answered"])
        live = logged_ids(database)
    after = logged_ids(database)  # the server has stopped gracefully (SIGTERM)
    result.pop("answered")
    result.update(
        {
            "duration_s": args.duration,
            "target_rate": args.rate,
            "warmup_s": args.warmup,
            "warmup_errors": warm["errors"],
            "log": "buffered" if args.log_buffered else "durable",
            "rss_start_mib": rss_start / 1024,
            "rss_end_mib": rss_end / 1024,
            "rss_max_mib": max(samples, default=rss_end) / 1024,
            "rss_ratio": rss_end / rss_start,
            "acknowledged": len(answered),
            "missing_while_running": len(answered - live),
            "missing_after_stop": len(answered - after),
        }
    )
    return result


def markdown(result: dict, model: Path) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            f"## Soak: {result['target_rate']:g} requests/s for {result['duration_s']:g} s "
            f"(credit-g, LightGBM) — {stamp}",
            "",
            f"`python benchmarks/soak.py --duration {result['duration_s']:g} --rate "
            f"{result['target_rate']:g}` on {platform.machine()}, {os.cpu_count()} cores "
            f"(Python {platform.python_version()}), single-row `POST /predict` over loopback, "
            f"{result['log']} SQLite prediction log, after {result['warmup_s']:g} s of warm-up; "
            f"model `{model.name}`.",
            "",
            "| measure | value |",
            "| --- | --- |",
            f"| requests (after warm-up) | {result['requests']:,} |",
            f"| rate achieved | {result['rate']:.1f} requests/s |",
            f"| errors (non-200 or transport) | {result['errors']} "
            f"(warm-up: {result['warmup_errors']}) |",
            f"| latency p50 / p99 / max | {result['p50_ms']:.2f} / {result['p99_ms']:.2f} / "
            f"{result['max_ms']:.1f} ms |",
            f"| server RSS after warm-up / end / max | {result['rss_start_mib']:.1f} / "
            f"{result['rss_end_mib']:.1f} / {result['rss_max_mib']:.1f} MiB (end/start "
            f"{result['rss_ratio']:.3f}) |",
            f"| acknowledged requests missing from the log, server running / after stop | "
            f"{result['missing_while_running']} / {result['missing_after_stop']} of "
            f"{result['acknowledged']:,} |",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="artifact directory (default: train one)")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds after warm-up")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of warm-up")
    parser.add_argument("--threads", type=int, default=8, help="client threads")
    parser.add_argument("--log-buffered", action="store_true", help="serve with --log-buffered")
    parser.add_argument("--results", type=Path, help="append a section to this Markdown file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlwright-soak-") as folder:
        home = Path(folder) / ".mlwright"
        home.mkdir()
        model = args.model or train_model(Path(folder))
        result = soak(model, home, args)
        print(json.dumps(result, indent=2))
        if args.results is not None:
            with args.results.open("a", encoding="utf-8") as handle:
                handle.write("\n" + markdown(result, model))


if __name__ == "__main__":
    main()
