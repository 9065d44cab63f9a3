"""Monitoring speed (issue 7's performance bar).

Measures, in this single process, on synthetic data with 10 numeric and 10 categorical
features (so the sizes are exact and nothing is downloaded):

- ``mlwright.monitor.drift`` of 1,000,000 current rows x 20 features against a reference
  (built from 200,000 training rows), best of 3, modules already imported. Target: < 3 s.
- reading those 1,000,000 rows back from the SQLite prediction log (``read_log``: SQL plus
  Arrow's JSON reader), reported separately.
- the server's dashboard with 1,000,000 logged rows for the served model: ``GET /dashboard``
  plus ``GET /dashboard/data`` through the ASGI app in process, best of 3: on a running
  server (the refresh after 1,000 more rows were logged; target < 1 s), and the first load
  after a restart (a fresh app on a log a previous server wrote, with its aggregates, and on
  which a dashboard ran before; target < 1 s). Also, once each: the first load on a log no
  dashboard ever opened (drift and live metrics computed before answering), and the one-time
  backfill of the aggregates of a log written by an mlwright without them.

The log is written through the server's store (``SQLiteLogStore.write``: rows and their
aggregates in one transaction per 2,048 rows, as the log writer batches them).

Results are appended to benchmarks/RESULTS.md with the command that produced them.

Usage::

    python benchmarks/monitor.py [--rows 1000000] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
CATEGORIES = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]


def synthetic(n: int, seed: int, shift: float = 0.0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    data = {f"x{i}": rng.normal(loc=shift if i == 0 else 0.0, size=n) for i in range(10)}
    weights = np.array([0.3, 0.25, 0.2, 0.1, 0.1, 0.05])
    for i in range(10):
        data[f"c{i}"] = pd.Series(
            np.asarray(CATEGORIES, dtype=object)[rng.choice(6, size=n, p=weights)]
        )
    frame = pd.DataFrame(data)
    frame["y"] = np.where(
        frame["x1"] + (frame["c1"] == "alpha") + rng.normal(size=n) > 0.5, "yes", "no"
    )
    return frame


def best_of(function, repeats: int = 3) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return min(timings)


def write_log(path: Path, frame, model_name: str, n_rows: int) -> None:
    """``n_rows`` logged predictions spread over the last 23 hours (the server's schema)."""
    from mlwright.serve import open_log_store

    store = open_log_store(f"sqlite:///{path}")  # the server's store: rows + aggregates
    records = frame.drop(columns=["y"]).to_dict(orient="records")
    texts = [json.dumps(record) for record in records]
    now = time.time()
    step = 82800.0 / n_rows  # 23 hours: inside the dashboard's default 24
    chunk = 2048  # the log writer's batch size
    for start in range(0, n_rows, chunk):
        store.write(
            [
                (
                    f"r{i // 10}",
                    i % 10,
                    now - 82800.0 + i * step,
                    model_name,
                    "1",
                    "main",
                    texts[i % len(texts)],
                    json.dumps("yes" if i % 3 else "no"),
                    json.dumps({"no": 0.4, "yes": 0.6}),
                    1.0 + (i % 7) * 0.1,
                )
                for i in range(start, min(start + chunk, n_rows))
            ]
        )
    store.close()
    connection = sqlite3.connect(path)
    # Feedback for 20,000 of them (live metrics).
    connection.executescript(
        "CREATE TABLE IF NOT EXISTS feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, "
        'request_id TEXT NOT NULL, "row" INTEGER NOT NULL DEFAULT 0, actual TEXT NOT NULL, '
        "timestamp REAL NOT NULL); CREATE INDEX IF NOT EXISTS feedback_request ON feedback "
        '(request_id, "row");'
    )
    connection.executemany(
        'INSERT INTO feedback (request_id, "row", actual, timestamp) VALUES (?,?,?,?)',
        [
            (f"r{i // 10}", i % 10, json.dumps("yes" if i % 2 else "no"), now)
            for i in range(n_rows - 20_000, n_rows)
        ],
    )
    connection.commit()
    connection.close()


def dashboard_seconds(model_dir: Path, log: Path) -> dict:
    """Seconds of the dashboard (page + data) in the situations the module docstring lists."""
    import httpx

    import mlwright
    from mlwright.serve import ModelRegistry, ServedModel, ServeSettings, create_app

    model = mlwright.load(model_dir)

    def fresh_app():
        registry = ModelRegistry([ServedModel(model, name="bench", version="1")])
        settings = ServeSettings(log_uri=f"sqlite:///{log}", grpc_port=0)
        return create_app(registry, settings)

    async def load(app, wait: float | None = None) -> dict:
        # Without ``wait`` the page's own request: stored drift at once, or "pending" after
        # half a second on a log no dashboard opened before.
        params = {} if wait is None else {"wait": wait}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            page = await client.get("/dashboard")
            data = await client.get("/dashboard/data", params=params)
            assert page.status_code == 200
            assert data.status_code == 200, data.text
            return data.json()

    def timed(app) -> tuple[float, dict]:
        started = time.perf_counter()
        payload = asyncio.run(load(app))
        return time.perf_counter() - started, payload

    warm = fresh_app()
    asyncio.run(load(warm, wait=60))  # imports scipy and the monitoring modules once
    warm.state.server.close()
    # A log no dashboard ever opened: forget the stored drift and live metrics.
    connection = sqlite3.connect(log)
    connection.execute("DELETE FROM dashboard_health")
    connection.commit()
    connection.close()
    app = fresh_app()
    never_opened, first = timed(app)
    pending = bool(first["models"][0].get("pending"))
    asyncio.run(load(app, wait=60))  # let the drift computed for it be stored
    app.state.server.close()
    restart, payload = [], {}
    for _ in range(3):
        app = fresh_app()  # a restarted server: nothing in memory, the log as it was left
        seconds, payload = timed(app)
        assert payload["models"][0]["drift"] is not None, payload  # the stored one
        restart.append(seconds)
        app.state.server.close()
    # A running dashboard: the next refresh after 1,000 more predictions were logged.
    from mlwright.serve._monitoring_routes import CACHE_SECONDS

    app = fresh_app()
    asyncio.run(load(app))
    refresh = []
    for _ in range(3):
        time.sleep(CACHE_SECONDS + 0.1)
        append_rows(log, 1000)
        seconds, _ = timed(app)
        refresh.append(seconds)
    app.state.server.close()
    return {
        "restart": min(restart),
        "refresh": min(refresh),
        "never_opened": never_opened,
        "never_opened_pending": pending,
        "payload": payload,
    }


def append_rows(log: Path, n: int) -> None:
    from mlwright.serve import open_log_store

    connection = sqlite3.connect(log)
    row = connection.execute(
        "SELECT request_id, features, prediction, probabilities FROM predictions "
        "ORDER BY id DESC LIMIT 1"
    ).fetchone()
    connection.close()
    now = time.time()
    store = open_log_store(f"sqlite:///{log}")
    store.write(
        [(row[0], i, now, "bench", "1", "main", row[1], row[2], row[3], 1.0) for i in range(n)]
    )
    store.close()


def backfill_seconds(log: Path) -> float:
    """The one-time aggregation of a log written by an mlwright without the aggregates."""
    from mlwright.serve import open_log_store

    connection = sqlite3.connect(log)
    connection.executescript(
        "DROP TABLE prediction_aggregates; DROP TABLE prediction_log_state; VACUUM;"
    )
    connection.close()
    started = time.perf_counter()
    store = open_log_store(f"sqlite:///{log}")
    assert store.backfill is not None
    store.backfill.join()
    seconds = time.perf_counter() - started
    store.close()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--no-write", action="store_true", help="Do not append to RESULTS.md.")
    arguments = parser.parse_args()
    n = arguments.rows
    load_at_start = os.getloadavg()[0]

    import mlwright
    from mlwright.monitor import build_reference, drift, read_log
    from mlwright.monitor._reference import infer_kinds

    train = synthetic(200_000, seed=0)
    features = train.drop(columns=["y"])
    reference = build_reference(features, infer_kinds(features))
    current = synthetic(n, seed=1, shift=0.3).drop(columns=["y"])
    drift(reference, current.head(1000))  # imports
    report = None

    def run_drift():
        nonlocal report
        report = drift(reference, current)

    drift_seconds = best_of(run_drift)
    assert report is not None
    assert report.drifted_features == ["x0"], report.drifted_features

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        model_dir = work / "model"
        mlwright.train(
            train.head(3000), target="y", models="lightgbm", max_trials=1, output=model_dir
        )
        log = work / "predictions.db"
        started = time.perf_counter()
        write_log(log, current.head(50_000).assign(y="no"), "bench", n)
        write_seconds = time.perf_counter() - started
        started = time.perf_counter()
        logged = read_log(f"sqlite:///{log}", model="bench")
        read_seconds = time.perf_counter() - started
        assert len(logged) == n
        dashboard = dashboard_seconds(model_dir, log)
        assert dashboard["payload"]["models"][0]["series"]["total"] == n
        backfill = backfill_seconds(log)

    load = os.getloadavg()
    later = ": they came on the next refresh" if dashboard["never_opened_pending"] else ""
    lines = [
        "",
        f"## Monitoring — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `python benchmarks/monitor.py --rows {n}` · {platform.machine()}, "
        f"{os.cpu_count()} cores (shared with other work), Python {sys.version.split()[0]}, "
        f"load average (1 min) {load_at_start:.1f} at the start, {load[0]:.1f} at the end "
        f"(5/15 min: {load[1]:.1f} / {load[2]:.1f})",
        "",
        "| measurement | value | target |",
        "| --- | --- | --- |",
        f"| drift of {n:,} rows x 20 features (10 numeric, 10 categorical), best of 3 | "
        f"{drift_seconds:.2f} s | < 3 s |",
        f"| read {n:,} logged rows from SQLite (read_log, JSON parsed by Arrow) | "
        f"{read_seconds:.2f} s | — |",
        f"| dashboard page + data, running server, {n:,} logged rows (refresh after 1,000 "
        f"new rows), best of 3 | {dashboard['refresh']:.2f} s | < 1 s |",
        f"| dashboard first load after a server restart ({n:,} rows, persisted aggregates "
        f"and stored drift), best of 3 | {dashboard['restart']:.2f} s | < 1 s |",
        f"| dashboard first load on a log no dashboard opened before (waits 0.5 s at most for "
        f"drift and live metrics{later}), "
        f"once | {dashboard['never_opened']:.2f} s | — |",
        f"| one-time backfill of the aggregates of a {n:,}-row log from an older mlwright "
        f"(background thread at open) | {backfill:.1f} s | — |",
        f"| (setup: writing the {n:,}-row log) | {write_seconds:.1f} s | — |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not arguments.no_write:
        with RESULTS.open("a", encoding="utf-8") as handle:
            handle.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
