"""Monitoring endpoints of the server: ``POST /feedback``, ``GET /dashboard`` and its data.

Kept apart from the prediction endpoints: nothing here runs on the request path of a
prediction. Traffic, latency and the prediction distribution come from the aggregates the log
writer keeps beside the log (per second, minute and hour; at most :data:`MAX_POINTS` points per
series), so a freshly started server reads a few thousand aggregate rows, not millions of
logged ones. Drift is measured on the newest :data:`DRIFT_ROWS` rows against the model's
reference and live metrics on the newest :data:`LABELLED_ROWS` labelled rows (bounded recent
samples); both are recomputed in the background at most every :data:`DRIFT_CACHE_SECONDS` and
persisted in the log, each drift result also as one point of the drift-over-time chart.
"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
import threading
import time
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    TypeAdapter,
)

from mlwright.errors import MlwrightError
from mlwright.monitor import drift, live_performance, load_reference, read_log, record_feedback
from mlwright.monitor._feedback import split_log_uri
from mlwright.monitor._monitor import logged_predictions
from mlwright.serve._log import AGGREGATE_RESOLUTIONS, LABEL_SQL, aggregated_id
from mlwright.serve._responses import error_response, parse_body
from mlwright.serve._validate import RequestValidationError

#: Points per time series on the dashboard (longer series are aggregated into wider buckets).
MAX_POINTS = 120
#: Newest logged rows whose drift the dashboard shows.
DRIFT_ROWS = 5000
#: Newest labelled rows whose live metrics the dashboard shows.
LABELLED_ROWS = 20000
#: Seconds a computed dashboard payload is reused.
CACHE_SECONDS = 5.0
DRIFT_CACHE_SECONDS = 30.0
#: Seconds the first load of a log with no stored drift waits for it before answering.
FIRST_WAIT_SECONDS = 0.5
#: Longest history (hours) and wait (seconds) ``GET /dashboard/data`` accepts.
MAX_HOURS = 24 * 366
MAX_WAIT_SECONDS = 60.0


def _json(content: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(content, default=_default, allow_nan=False),
        status_code=status,
        media_type="application/json",
    )


def _default(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    item = getattr(value, "item", None)
    if item is not None:
        return item()
    return str(value)


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _sqlite_path(uri: str) -> str | None:
    scheme, path = split_log_uri(uri)
    return str(path) if scheme == "sqlite" and path.is_file() else None


def _label_text(label: str) -> str:
    """A predicted label as the dashboard names it (the aggregates keep its JSON text)."""
    try:
        value = json.loads(label)
    except ValueError:  # text written by hand, not JSON
        return label
    return "null" if value is None else str(value)


def _series(path: str, model: str, since: float, until: float) -> dict[str, Any]:
    """Traffic, latency and prediction distribution per time bucket.

    Read from the log's persisted aggregates (``prediction_aggregates``, kept by the log
    writer, see :func:`mlwright.serve._log.aggregate_pending`), at the coarsest resolution
    that divides the bucket width, plus the few rows logged above their watermark, grouped in
    SQL. Nothing here reads the whole log, so a freshly started server answers as fast as a
    running one.
    """

    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        # One read transaction: the watermark, the aggregates and the rows above the watermark
        # come from the same snapshot, so no row is counted twice or missed.
        connection.execute("BEGIN")
        # A log no store of this version opened yet has no aggregates: all rows are "above".
        aggregated = bool(
            connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                "name = 'prediction_aggregates'"
            ).fetchone()
        )
        done = aggregated_id(connection) if aggregated else 0
        first = floor_since = math.floor(since)
        candidates = []
        if aggregated:
            candidates.append(
                connection.execute(
                    "SELECT MIN(start) FROM prediction_aggregates WHERE model = ? AND "
                    "resolution = 1 AND start >= ?",
                    (model, floor_since),
                ).fetchone()[0]
            )
        candidates.append(
            connection.execute(
                # "+" keeps SQLite on the id range (the few rows above the watermark)
                # instead of the (model, timestamp) index over the whole log.
                "SELECT CAST(MIN(timestamp) AS INTEGER) FROM predictions WHERE id > ? AND "
                "+model = ? AND +timestamp >= ?",
                (done, model, floor_since),
            ).fetchone()[0]
        )
        found = [value for value in candidates if value is not None]
        if found:
            first = min(found)
        # Buckets span the logged part of the window; at most MAX_POINTS of them.
        width = max(1, math.ceil(max(until - first, 1.0) / MAX_POINTS))
        resolution = max(r for r in AGGREGATE_RESOLUTIONS if r <= width)
        width = math.ceil(width / resolution) * resolution
        origin = first // resolution * resolution
        rows = []
        if aggregated:
            rows += connection.execute(
                "SELECT (start - ?1) / ?2 AS b, label, SUM(count), TOTAL(latency_sum), "
                "MAX(latency_max), SUM(value_count), TOTAL(value_sum), MIN(value_min), "
                "MAX(value_max) FROM prediction_aggregates WHERE model = ?3 AND resolution = ?4 "
                "AND start >= ?1 GROUP BY b, label",
                (origin, width, model, resolution),
            ).fetchall()
        value = f"CASE WHEN {LABEL_SQL} = '' THEN CAST(prediction AS REAL) END"
        rows += connection.execute(
            f"SELECT (CAST(timestamp AS INTEGER) / ?4 * ?4 - ?1) / ?2 AS b, {LABEL_SQL} AS label, "
            f"COUNT(*), TOTAL(latency_ms), MAX(latency_ms), COUNT({value}), TOTAL({value}), "
            f"MIN({value}), MAX({value}) FROM predictions WHERE id > ?5 AND +model = ?3 AND "
            "+timestamp >= ?1 GROUP BY b, label",
            (origin, width, model, resolution, done),
        ).fetchall()
    finally:
        connection.close()
    # bucket -> [count, latency sum, latency max, {label: count}, numeric n, sum, min, max]
    buckets: dict[int, list[Any]] = {}
    totals: dict[str, int] = {}
    for index, label, count, latency_sum, latency_max, n_values, v_sum, v_min, v_max in rows:
        slot = buckets.get(index)
        if slot is None:
            slot = buckets[index] = [0, 0.0, 0.0, {}, 0, 0.0, None, None]
        slot[0] += count
        slot[1] += latency_sum or 0.0
        slot[2] = max(slot[2], latency_max or 0.0)
        if n_values:
            slot[4] += n_values
            slot[5] += v_sum
            slot[6] = v_min if slot[6] is None else min(slot[6], v_min)
            slot[7] = v_max if slot[7] is None else max(slot[7], v_max)
        if label != "":
            name = _label_text(label)
            slot[3][name] = slot[3].get(name, 0) + count
            totals[name] = totals.get(name, 0) + count
    # The busiest labels only (a classifier's classes; a few values of anything else).
    top = [label for label, _ in sorted(totals.items(), key=lambda kv: -kv[1])[:8]]
    ordered = sorted(buckets.items())
    numeric = sum(slot[4] for _, slot in ordered)
    return {
        "bucket_seconds": width,
        "resolution_seconds": resolution,
        "time": [origin + index * width for index, _ in ordered],
        "count": [slot[0] for _, slot in ordered],
        "latency_ms_mean": [slot[1] / slot[0] if slot[0] else None for _, slot in ordered],
        "latency_ms_max": [slot[2] for _, slot in ordered],
        "classes": top,
        "class_counts": {label: [slot[3].get(label, 0) for _, slot in ordered] for label in top},
        "numeric_predictions": numeric,
        "prediction_mean": [slot[5] / slot[4] if slot[4] else None for _, slot in ordered],
        "prediction_min": [slot[6] for _, slot in ordered],
        "prediction_max": [slot[7] for _, slot in ordered],
        "total": sum(slot[0] for _, slot in ordered),
    }


_HEALTH_SCHEMA = """
CREATE TABLE IF NOT EXISTS dashboard_health (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    computed REAL NOT NULL,
    health TEXT NOT NULL,
    PRIMARY KEY (model, version)
);
CREATE TABLE IF NOT EXISTS drift_history (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    computed REAL NOT NULL,
    n_rows INTEGER NOT NULL,
    share REAL,
    drifted INTEGER NOT NULL,
    prediction_drifted INTEGER
);
CREATE INDEX IF NOT EXISTS drift_history_model_time ON drift_history (model, computed);
"""


def _compute_health(served: Any, uri: str) -> dict[str, Any]:
    """Drift of the newest :data:`DRIFT_ROWS` rows and live metrics of the newest
    :data:`LABELLED_ROWS` labelled rows: bounded recent samples, not the whole log."""
    health: dict[str, Any] = {
        "drift": None,
        "performance": None,
        "computed": time.time(),
        "labelled": _labelled_count(uri, served.name),
    }
    try:
        reference = load_reference(served.model)
        log = read_log(uri, model=served.name, limit=DRIFT_ROWS)
        if len(log):
            report = drift(
                reference, log.features, predictions=logged_predictions(served.model, log)
            )
            health["drift"] = {
                "n_rows": len(log),
                "share": report.share,
                "dataset_drift": report.dataset_drift,
                "drifted_features": report.drifted_features,
                "prediction_drifted": None
                if report.prediction is None
                else report.prediction.drifted,
                "features": [
                    {
                        "name": item.name,
                        "statistic": item.statistic,
                        "value": item.value,
                        "threshold": item.threshold,
                        "drifted": item.drifted,
                        "method": item.method,
                    }
                    for item in report.features
                ],
            }
        labelled = read_log(
            uri, model=served.name, limit=LABELLED_ROWS, with_feedback=True, labelled_only=True
        )
        if len(labelled):
            size = max(30, len(labelled) // 20)
            performance = live_performance(
                served.model, labelled, window=f"{size}rows", n_resamples=200
            )
            health["performance"] = performance.to_dict()
    except MlwrightError as err:
        health["error"] = str(err)
    return _clean(health)


def _labelled_count(uri: str, model: str) -> int:
    """Logged rows of ``model`` with feedback (each row once, however often it was labelled)."""
    path = _sqlite_path(uri)
    if path is None:
        return 0
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        if not connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'feedback'"
        ).fetchone():
            return 0
        # Driven from the feedback (CROSS JOIN keeps that order), each looked up through the
        # request index: the cost follows the labels, not the size of the log.
        return int(
            connection.execute(
                'SELECT COUNT(*) FROM (SELECT DISTINCT f.request_id, f."row" FROM feedback f '
                'CROSS JOIN predictions p ON p.request_id = f.request_id AND p."row" = f."row" '
                "WHERE +p.model = ?)",
                (model,),
            ).fetchone()[0]
        )
    finally:
        connection.close()


def _store_health(path: str, model: str, version: str, health: dict[str, Any]) -> None:
    """Persist the newest health of a model version, and its drift as one history point."""
    try:
        connection = sqlite3.connect(path, timeout=10)
        try:
            connection.executescript(_HEALTH_SCHEMA)
            with connection:
                connection.execute(
                    "INSERT INTO dashboard_health (model, version, computed, health) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (model, version) DO UPDATE SET "
                    "computed = excluded.computed, health = excluded.health",
                    (model, version, health["computed"], json.dumps(health, default=_default)),
                )
                found = health.get("drift")
                if found:
                    connection.execute(
                        "INSERT INTO drift_history (model, version, computed, n_rows, share, "
                        "drifted, prediction_drifted) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            model,
                            version,
                            health["computed"],
                            found["n_rows"],
                            found["share"],
                            len(found["drifted_features"]),
                            found["prediction_drifted"],
                        ),
                    )
        finally:
            connection.close()
    except sqlite3.Error:
        # Persisting only saves the next server start some work: the page still has the
        # numbers in memory, so a busy or read-only log must not fail the dashboard.
        return


def _load_health(path: str, model: str, version: str) -> dict[str, Any] | None:
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            row = connection.execute(
                "SELECT health FROM dashboard_health WHERE model = ? AND version = ?",
                (model, version),
            ).fetchone()
        finally:
            connection.close()
    except sqlite3.Error:  # no such table: no dashboard ran on this log yet
        return None
    return None if row is None else json.loads(row[0])


def _drift_history(path: str, model: str, since: float) -> dict[str, list[Any]]:
    """Drift share over time: one point per drift computation (each of the newest rows then),
    averaged into at most :data:`MAX_POINTS` buckets."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            rows = connection.execute(
                "SELECT computed, share, n_rows FROM drift_history WHERE model = ? AND "
                "computed >= ? ORDER BY computed",
                (model, since),
            ).fetchall()
        finally:
            connection.close()
    except sqlite3.Error:
        rows = []
    rows = [row for row in rows if row[1] is not None]
    if len(rows) > MAX_POINTS:
        width = (rows[-1][0] - rows[0][0]) / MAX_POINTS or 1.0
        grouped: dict[int, list[Any]] = {}
        for computed, share, n_rows in rows:
            grouped.setdefault(int((computed - rows[0][0]) // width), []).append(
                (computed, share, n_rows)
            )
        rows = [
            (
                max(item[0] for item in group),
                sum(item[1] for item in group) / len(group),
                max(item[2] for item in group),
            )
            for _, group in sorted(grouped.items())
        ]
    return {
        "time": [row[0] for row in rows],
        "share": [row[1] for row in rows],
        "n_rows": [row[2] for row in rows],
    }


class _HealthKeeper:
    """Drift and live metrics of each served model version, for the dashboard.

    They cost more than the aggregates (a bounded recent sample is read and tested), so they
    are recomputed at most every :data:`DRIFT_CACHE_SECONDS`, in a background thread, and
    persisted in the log (tables ``dashboard_health`` and ``drift_history``). A refresh, and
    the first load after a restart, answer at once with the newest stored result (its
    ``computed`` time is shown on the page) while a fresh one is computed. On a log no
    dashboard ever ran on, the first load waits :data:`FIRST_WAIT_SECONDS` (or the request's
    ``wait``) at most for them, then answers with ``pending`` (the page says they are being
    computed and shows them on its next refresh).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # (path, model, version) -> (monotonic time it was computed, health)
        self.known: dict[tuple[str, str, str], tuple[float, dict[str, Any]]] = {}
        # (path, model, version) -> set when the computation under way ends
        self.running: dict[tuple[str, str, str], threading.Event] = {}

    def get(
        self, served: Any, uri: str, path: str, wait: float = FIRST_WAIT_SECONDS
    ) -> dict[str, Any]:
        key = (path, served.name, str(served.version))
        with self.lock:
            held = self.known.get(key)
        if held is None:
            stored = _load_health(path, served.name, str(served.version))
            if stored is not None:
                age = max(0.0, time.time() - float(stored.get("computed") or 0.0))
                held = (time.monotonic() - age, stored)
                with self.lock:
                    self.known.setdefault(key, held)
        if held is None:
            # Nothing stored (no dashboard ran on this log): compute now, but answer after
            # FIRST_WAIT_SECONDS at most; the page shows the result on its next refresh.
            done = self._start(key, served, uri)
            done.wait(wait)
            with self.lock:
                held = self.known.get(key)
            if held is None:
                return {
                    "drift": None,
                    "performance": None,
                    "computed": None,
                    "labelled": None,
                    "pending": True,
                }
            return held[1]
        if time.monotonic() - held[0] >= DRIFT_CACHE_SECONDS:
            self._start(key, served, uri)
        return held[1]

    def _start(self, key: tuple[str, str, str], served: Any, uri: str) -> threading.Event:
        with self.lock:
            done = self.running.get(key)
            if done is not None:
                return done
            done = self.running[key] = threading.Event()
        threading.Thread(
            target=self._background,
            args=(key, served, uri, done),
            name="mlwright-dashboard-health",
            daemon=True,
        ).start()
        return done

    def _background(
        self, key: tuple[str, str, str], served: Any, uri: str, done: threading.Event
    ) -> None:
        try:
            self._refresh(key, served, uri)
        finally:
            with self.lock:
                self.running.pop(key, None)
            done.set()

    def _refresh(self, key: tuple[str, str, str], served: Any, uri: str) -> dict[str, Any]:
        health = _compute_health(served, uri)
        with self.lock:
            self.known[key] = (time.monotonic(), health)
        _store_health(key[0], key[1], key[2], health)
        return health


#: A JSON number that is finite (the parser reads NaN and Infinity too).
FiniteNumber = Annotated[float, Field(strict=True, allow_inf_nan=False)]


def _whole(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


#: A JSON integer: ``3`` or ``3.0`` (JSON Schema's integer), never ``true`` or ``"3"``.
WholeNumber = Annotated[int, BeforeValidator(_whole), Field(strict=True)]


class FeedbackItem(BaseModel):
    """The true outcome of one logged prediction row."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, description="The id the prediction answered with.")
    actual: StrictBool | StrictInt | FiniteNumber | StrictStr = Field(
        description="The true outcome: a class label or a number."
    )
    row: WholeNumber = Field(0, ge=0, description="The row within the request (0 for one row).")
    # Absent rather than null: JSON null is refused, as the schema says.
    timestamp: float = Field(
        None,
        strict=True,
        allow_inf_nan=False,
        description="When the outcome was observed, unix seconds (default: now).",
    )


class FeedbackBatch(BaseModel):
    """Several outcomes in one request."""

    model_config = ConfigDict(extra="forbid")

    items: list[FeedbackItem] = Field(min_length=1)


#: ``POST /feedback`` accepts one item or a batch; the OpenAPI document declares this schema.
FEEDBACK_BODY: TypeAdapter = TypeAdapter(FeedbackItem | FeedbackBatch)
_ONE_ITEM, _BATCH = TypeAdapter(FeedbackItem), TypeAdapter(FeedbackBatch)


def _feedback_shape(payload: Any) -> TypeAdapter:
    """The batch or the single-item half of :data:`FEEDBACK_BODY`, by what was sent."""
    return _BATCH if isinstance(payload, dict) and "items" in payload else _ONE_ITEM


def build_monitoring_router(state: Any) -> APIRouter:
    """The monitoring routes of a server (``state`` is its ``ServerState``)."""
    router = APIRouter()
    cache: dict[str, tuple[float, Any]] = {}
    health = _HealthKeeper()

    def log_uri() -> str | None:
        if state.log is None:
            return None
        return getattr(state.log.store, "uri", None)

    @router.post("/feedback", tags=["monitoring"], summary="Send true outcomes")
    async def feedback(request: Request) -> Response:
        """Record the true outcome of logged predictions.

        Body: ``{"request_id": "...", "actual": value, "row": 0, "timestamp": unix}`` or
        ``{"items": [...]}`` with several. ``row`` is the row within the request (0 for
        single-row requests).
        """
        uri = log_uri()
        if uri is None:
            return _json(
                {
                    "error": "This server keeps no prediction log (started with --log none), so "
                    "there are no predictions to attach outcomes to."
                },
                status=409,
            )
        try:
            body = parse_body(_feedback_shape, await request.body())
        except RequestValidationError as err:
            return error_response(state, None, err)
        batch = body.items if isinstance(body, FeedbackBatch) else [body]
        items = [item.model_dump() for item in batch]
        loop = asyncio.get_running_loop()
        try:
            stored = await loop.run_in_executor(state.executor, record_feedback, uri, items)
        except MlwrightError as err:  # the log cannot be written (disk full, read-only)
            return _json({"error": str(err)}, status=503)
        return _json({"stored": stored})

    @router.get(
        "/dashboard",
        tags=["monitoring"],
        summary="Monitoring dashboard",
        response_class=HTMLResponse,
    )
    async def dashboard() -> HTMLResponse:
        page = resources.files("mlwright.report").joinpath("templates/dashboard.html")
        return HTMLResponse(page.read_text(encoding="utf-8"))

    @router.get("/dashboard/data", tags=["monitoring"], summary="Dashboard numbers")
    async def dashboard_data(
        hours: float = Query(
            24.0, gt=0, le=MAX_HOURS, allow_inf_nan=False, description="Hours of history."
        ),
        wait: float = Query(
            FIRST_WAIT_SECONDS,
            ge=0,
            le=MAX_WAIT_SECONDS,
            allow_inf_nan=False,
            description="Seconds to wait for drift and live metrics not computed yet.",
        ),
    ) -> Response:
        """The dashboard's numbers. ``wait``: seconds to wait for drift and live metrics when
        none were computed on this log yet (they come as ``pending`` after that)."""
        key = f"all:{hours}"
        cached = cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return _json(cached[1])
        loop = asyncio.get_running_loop()
        payload = await loop.run_in_executor(state.executor, _payload, hours, wait)
        if not any(entry.get("pending") for entry in payload["models"]):
            # A payload still waiting for drift is not reused: the next refresh may have it.
            cache[key] = (time.monotonic(), payload)
        return _json(payload)

    def _requests() -> dict[str, float]:
        total = errors = 0.0
        for family in state.metrics.registry.collect():
            if family.name != "mlwright_requests":
                continue
            for sample in family.samples:
                if not sample.name.endswith("_total"):
                    continue
                if sample.labels.get("endpoint") not in ("predict", "model_predict", "v2_infer"):
                    continue
                total += sample.value
                if str(sample.labels.get("status", "200"))[:1] in ("4", "5"):
                    errors += sample.value
        return {"total": total, "errors": errors}

    def _payload(hours: float, wait: float) -> dict[str, Any]:
        now = time.time()
        since = now - hours * 3600
        uri = log_uri()
        path = _sqlite_path(uri) if uri else None
        models = []
        for served in state.registry.models():
            entry: dict[str, Any] = {
                "name": served.name,
                "version": served.version,
                "task": served.task,
                "target": served.target,
            }
            if path is None or uri is None:
                entry["error"] = (
                    f"No SQLite prediction log to read (the server logs to {uri or 'nothing'})."
                )
                models.append(entry)
                continue
            entry["series"] = _series(path, served.name, since, now)
            entry.update(health.get(served, uri, path, wait))
            # Counted with the drift (it reads every label), so it is as of entry["computed"].
            entry["series"]["labelled"] = entry.pop("labelled", 0)
            entry["drift_history"] = _drift_history(path, served.name, since)
            models.append(entry)
        return _clean({"generated": now, "hours": hours, "models": models, "requests": _requests()})

    return router
