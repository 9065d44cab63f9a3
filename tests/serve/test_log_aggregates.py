"""The prediction log's aggregates equal what the raw rows say, however the rows were written.

Real SQLite files in tmp_path: rows written by the log writer (one or several at once), by a
store that was closed and reopened, by an older mlwright (no aggregate tables), and by hand.
Each time the aggregate table is compared with the same sums computed in Python from the
``predictions`` rows, and the dashboard's series with a grouping of the raw rows.
"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
import threading
from collections import defaultdict

import httpx
import pytest

from mlwright.serve import ModelRegistry, PredictionLog, ServeSettings, create_app, open_log_store
from mlwright.serve._log import AGGREGATE_RESOLUTIONS, SQLiteLogStore, aggregated_id
from mlwright.serve._monitoring_routes import MAX_POINTS, _series

BASE = 1_790_000_000.0  # a fixed moment (2026), so buckets do not depend on the clock


def _prediction(kind: str, index: int):
    if kind == "class":
        return ["good", "bad", "neutral"][index % 3]
    if kind == "number":
        return (index % 17) * 0.37 - 2.0
    return None  # NaN outputs are logged as null


def _append(log: PredictionLog, model: str, kind: str, index: int, rows: int = 2) -> None:
    assert log.append(
        f"{model}-{index}",
        model,
        "1",
        [{"age": 20 + row, "purpose": "car"} for row in range(rows)],
        [_prediction(kind, index + row) for row in range(rows)],
        None,
        0.5 + (index % 11) * 0.25,
        # Spread over about four hours, several rows per second at places.
        timestamp=BASE + index * 7.3,
    )


def _raw(path, upto: int | None = None) -> dict[tuple, list]:
    """``(model, resolution, start, label) -> [count, latency sum, latency max, values...]``."""
    connection = sqlite3.connect(path)
    rows = connection.execute(
        "SELECT id, model, timestamp, prediction, latency_ms FROM predictions"
    ).fetchall()
    connection.close()
    out: dict[tuple, list] = {}
    for row_id, model, stamp, prediction, latency in rows:
        if upto is not None and row_id > upto:
            continue
        value = json.loads(prediction)
        numeric = isinstance(value, float)
        label = "" if numeric else prediction
        for resolution in AGGREGATE_RESOLUTIONS:
            key = (model, resolution, int(stamp) // resolution * resolution, label)
            slot = out.setdefault(key, [0, 0.0, 0.0, 0, 0.0, None, None])
            slot[0] += 1
            slot[1] += latency
            slot[2] = max(slot[2], latency)
            if numeric:
                slot[3] += 1
                slot[4] += value
                slot[5] = value if slot[5] is None else min(slot[5], value)
                slot[6] = value if slot[6] is None else max(slot[6], value)
    return out


def _stored(path) -> dict[tuple, list]:
    connection = sqlite3.connect(path)
    rows = connection.execute(
        "SELECT model, resolution, start, label, count, latency_sum, latency_max, value_count, "
        "value_sum, value_min, value_max FROM prediction_aggregates"
    ).fetchall()
    connection.close()
    return {tuple(row[:4]): list(row[4:]) for row in rows}


def _assert_same(stored: dict, raw: dict) -> None:
    assert stored.keys() == raw.keys()
    for key, expected in raw.items():
        got = stored[key]
        assert got[0] == expected[0], key
        assert got[3] == expected[3], key
        for index in (1, 2, 4, 5, 6):
            if expected[index] is None:
                assert got[index] is None, key
            else:
                assert got[index] == pytest.approx(expected[index], abs=1e-9), key


def _max_id(path) -> int:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("SELECT MAX(id) FROM predictions").fetchone()[0] or 0
    finally:
        connection.close()


def _watermark(path) -> int:
    connection = sqlite3.connect(path)
    try:
        return aggregated_id(connection)
    finally:
        connection.close()


def test_several_writers_and_a_restart_keep_aggregates_exact(tmp_path):
    path = tmp_path / "log.db"
    uri = f"sqlite:///{path}"
    # Two servers writing the same file at once (each its own store and writer thread),
    # small batches so their transactions interleave.
    logs = [PredictionLog(open_log_store(uri), batch_size=7, interval=0.0) for _ in range(2)]

    def feed(log: PredictionLog, model: str, kind: str, offset: int) -> None:
        for index in range(offset, offset + 600):
            _append(log, model, kind, index)

    threads = [
        threading.Thread(target=feed, args=(logs[0], "credit", "class", 0)),
        threading.Thread(target=feed, args=(logs[1], "price", "number", 0)),
        threading.Thread(target=feed, args=(logs[1], "credit", "class", 600)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for log in logs:
        log.close()
        assert log.dropped == 0
    assert _max_id(path) == 3 * 600 * 2
    assert _watermark(path) == _max_id(path)
    _assert_same(_stored(path), _raw(path))

    # A restart: a new store on the same file resumes from the watermark.
    log = PredictionLog(open_log_store(uri), interval=0.0)
    for index in range(1200, 1500):
        _append(log, "credit", "null", index)  # null outputs are a label of their own
        _append(log, "price", "number", index)
    log.close()
    assert _watermark(path) == _max_id(path) == 3 * 600 * 2 + 2 * 300 * 2
    _assert_same(_stored(path), _raw(path))


def test_log_from_an_older_version_is_backfilled_once(tmp_path):
    path = tmp_path / "old.db"
    # The schema the previous mlwright created: no aggregate tables.
    store = SQLiteLogStore(path)
    store.close()
    connection = sqlite3.connect(path)
    connection.executescript("DROP TABLE prediction_aggregates; DROP TABLE prediction_log_state;")
    connection.executemany(
        'INSERT INTO predictions (request_id, "row", timestamp, model, version, arm, features, '
        "prediction, probabilities, latency_ms) VALUES (?, 0, ?, ?, '1', 'main', '{}', ?, NULL, ?)",
        [
            (
                f"r{index}",
                BASE + index * 3.1,
                "credit" if index % 4 else "price",
                json.dumps(_prediction("class" if index % 4 else "number", index)),
                1.0 + index % 5,
            )
            for index in range(5000)
        ],
    )
    connection.commit()
    connection.close()
    assert _watermark(path) == 0
    # Before any store opens it, the dashboard groups the raw rows itself.
    until = BASE + 5000 * 3.1 + 1
    before = _series(str(path), "credit", BASE - 1, until)
    assert before["total"] == sum(1 for index in range(5000) if index % 4)

    store = SQLiteLogStore(path)
    assert store.backfill is not None
    store.backfill.join(timeout=60)
    assert _watermark(path) == 5000
    _assert_same(_stored(path), _raw(path))
    store.close()
    # Opening again finds nothing to backfill.
    again = SQLiteLogStore(path)
    assert again.backfill is None
    again.close()
    _assert_same(_stored(path), _raw(path))
    assert _series(str(path), "credit", BASE - 1, until) == before


def _raw_series(path, model: str, resolution: int, origin: int, width: int) -> dict[int, dict]:
    connection = sqlite3.connect(path)
    rows = connection.execute(
        "SELECT timestamp, prediction, latency_ms FROM predictions WHERE model = ?", (model,)
    ).fetchall()
    connection.close()
    buckets: dict[int, dict] = defaultdict(
        lambda: {"count": 0, "latency": 0.0, "max": 0.0, "labels": defaultdict(int)}
    )
    for stamp, prediction, latency in rows:
        start = int(stamp) // resolution * resolution
        if start < origin:
            continue
        slot = buckets[(start - origin) // width]
        slot["count"] += 1
        slot["latency"] += latency
        slot["max"] = max(slot["max"], latency)
        value = json.loads(prediction)
        if not isinstance(value, float):
            slot["labels"]["null" if value is None else str(value)] += 1
    return buckets


def test_dashboard_series_equal_the_raw_rows_with_rows_above_the_watermark(tmp_path):
    path = tmp_path / "log.db"
    log = PredictionLog(open_log_store(f"sqlite:///{path}"), interval=0.0)
    for index in range(900):
        _append(log, "credit", "class", index)
    log.close()
    # Rows another program inserted without aggregating them (above the watermark).
    connection = sqlite3.connect(path)
    connection.executemany(
        'INSERT INTO predictions (request_id, "row", timestamp, model, version, arm, features, '
        "prediction, probabilities, latency_ms) VALUES (?, 0, ?, 'credit', '1', 'main', '{}', ?, "
        "NULL, 9.5)",
        [(f"x{index}", BASE + 6000 + index, json.dumps("bad")) for index in range(250)],
    )
    connection.commit()
    connection.close()
    assert _watermark(path) < _max_id(path)

    until = BASE + 8 * 3600
    windows = [
        (BASE - 1, until),  # minute aggregates
        (BASE - 1, BASE + 6600),  # second aggregates
        (BASE + 6240, BASE + 6600),  # a few minutes at the end
        (BASE + 3000, BASE + 200 * 3600),  # hour aggregates
    ]
    resolutions = set()
    for since, end in windows:
        series = _series(str(path), "credit", since, end)
        width, resolution = series["bucket_seconds"], series["resolution_seconds"]
        resolutions.add(resolution)
        assert width % resolution == 0
        assert 0 < len(series["time"]) <= MAX_POINTS
        # The first bucket starts at the first logged second in the window, aligned.
        origin = int(series["time"][0])
        assert origin % resolution == 0
        raw = _raw_series(path, "credit", resolution, origin, width)
        expected = sorted(raw.items())
        assert series["count"] == [slot["count"] for _, slot in expected]
        assert series["time"] == [origin + index * width for index, _ in expected]
        assert series["total"] == sum(slot["count"] for _, slot in expected)
        for got, (_, slot) in zip(series["latency_ms_mean"], expected, strict=True):
            assert got == pytest.approx(slot["latency"] / slot["count"])
        assert series["latency_ms_max"] == [slot["max"] for _, slot in expected]
        for label in series["classes"]:
            assert series["class_counts"][label] == [slot["labels"][label] for _, slot in expected]
    assert resolutions == set(AGGREGATE_RESOLUTIONS)
    whole = _series(str(path), "credit", BASE - 1, until)
    assert whole["total"] == 900 * 2 + 250
    assert set(whole["classes"]) == {"good", "bad", "neutral"}

    # The next store folds the hand-written rows in: same series, now all from aggregates.
    store = SQLiteLogStore(path)
    assert store.backfill is not None
    store.backfill.join(timeout=60)
    store.close()
    assert _watermark(path) == _max_id(path)
    assert _series(str(path), "credit", BASE - 1, until) == whole


def test_numeric_predictions_are_summarised_not_counted_per_value(tmp_path):
    path = tmp_path / "log.db"
    log = PredictionLog(open_log_store(f"sqlite:///{path}"), interval=0.0)
    for index in range(300):
        _append(log, "price", "number", index, rows=1)
    log.close()
    series = _series(str(path), "price", BASE - 1, BASE + 3 * 3600)
    assert series["classes"] == []
    assert series["numeric_predictions"] == 300
    values = [_prediction("number", index) for index in range(300)]
    assert min(value for value in series["prediction_min"] if value is not None) == min(values)
    assert max(value for value in series["prediction_max"] if value is not None) == max(values)
    weighted = sum(
        mean * count
        for mean, count in zip(series["prediction_mean"], series["count"], strict=True)
        if mean is not None
    )
    assert math.isclose(weighted, sum(values), abs_tol=1e-6)
    # Far fewer aggregate rows than distinct outputs x seconds: one per bucket and resolution.
    connection = sqlite3.connect(path)
    labels = {row[0] for row in connection.execute("SELECT label FROM prediction_aggregates")}
    connection.close()
    assert labels == {""}


def _get(app, path: str, **params) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path, params=params)

    return asyncio.run(go())


def _post(app, path: str, body: dict) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(path, json=body)

    return asyncio.run(go())


def test_dashboard_after_a_restart_reads_the_persisted_state(
    credit_model_dir, credit_records, tmp_path
):
    from mlwright.serve import load_served_model

    log_path = tmp_path / "predictions.db"
    settings = ServeSettings(
        home=tmp_path / ".mlwright", grpc_port=0, log_uri=f"sqlite:///{log_path}"
    )
    served = load_served_model(str(credit_model_dir))
    app = create_app(ModelRegistry([served]), settings)
    for start in range(0, 200, 20):
        response = _post(app, "/predict", {"records": credit_records[start : start + 20]})
        assert response.status_code == 200, response.text
        body = response.json()
        items = [
            {"request_id": body["request_id"], "row": row, "actual": "good"} for row in range(20)
        ]
        assert _post(app, "/feedback", {"items": items}).status_code == 200
    app.state.server.log.flush(30)
    first = _get(app, "/dashboard/data", wait=60).json()["models"][0]
    app.state.server.close()
    assert first["series"]["total"] == 200
    assert first["series"]["labelled"] == 200
    assert first["drift"]["n_rows"] == 200
    assert first["performance"]["windows"]
    assert len(first["drift_history"]["time"]) == 1

    # A fresh server on the same log: the series from the aggregates, the drift as stored.
    served_again = load_served_model(str(credit_model_dir))
    restarted = create_app(ModelRegistry([served_again]), settings)
    again = _get(restarted, "/dashboard/data", wait=0).json()["models"][0]
    restarted.state.server.close()
    assert not again.get("pending")
    assert again["computed"] == first["computed"]
    assert again["drift"] == first["drift"]
    assert again["series"]["labelled"] == 200
    for key in ("count", "classes", "class_counts", "total", "latency_ms_max"):
        assert again["series"][key] == first["series"][key]
    assert again["drift_history"]["share"] == first["drift_history"]["share"]


def test_a_failing_aggregation_never_loses_rows(tmp_path, monkeypatch):
    from mlwright.serve import _log

    path = tmp_path / "log.db"

    def broken(connection, limit=0):
        connection.execute("INSERT INTO prediction_log_state VALUES ('aggregated_id', 999)")
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(_log, "aggregate_pending", broken)
    store = SQLiteLogStore(path)
    log = PredictionLog(store, interval=0.0)
    for index in range(50):
        _append(log, "credit", "class", index)
    log.close()
    assert log.written == 100
    assert log.dropped == 0
    assert store.aggregate_errors > 0
    assert _max_id(path) == 100
    assert _watermark(path) == 0  # the failed step was rolled back, rows kept
    # The dashboard still counts every row; the next healthy store folds them in.
    assert _series(str(path), "credit", BASE - 1, BASE + 3600)["total"] == 100
    monkeypatch.undo()
    store = SQLiteLogStore(path)
    assert store.backfill is not None
    store.backfill.join(timeout=60)
    store.close()
    _assert_same(_stored(path), _raw(path))
