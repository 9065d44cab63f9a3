"""Monitoring endpoints of the server: ``POST /feedback``, ``GET /dashboard`` and its data.

Kept apart from the prediction endpoints: nothing here runs on the request path of a
prediction. The dashboard's numbers are aggregated in SQL over the prediction log (one grouped
scan per refresh, at most :data:`MAX_POINTS` points per series) and cached for a few seconds,
so the page stays fast with millions of logged rows. Drift is measured on the newest
:data:`DRIFT_ROWS` rows against the model's reference, live metrics on labelled rows.
"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
import threading
import time
from importlib import resources
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

#: Points per time series on the dashboard (longer series are aggregated into wider buckets).
MAX_POINTS = 120
#: Newest logged rows whose drift the dashboard shows.
DRIFT_ROWS = 5000
#: Newest labelled rows whose live metrics the dashboard shows.
LABELLED_ROWS = 20000
#: Seconds a computed dashboard payload is reused.
CACHE_SECONDS = 5.0
DRIFT_CACHE_SECONDS = 30.0


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
    from mlwright.monitor._feedback import split_log_uri

    scheme, path = split_log_uri(uri)
    return str(path) if scheme == "sqlite" and path.is_file() else None


class _Aggregates:
    """Per-second traffic, latency and prediction counts of one model, kept up to date.

    Each refresh aggregates only the rows logged since the previous one (``id`` greater than
    the last seen: a range of the primary key, not a scan), grouped by second in SQL. The first
    refresh after start reads the whole log once; later ones cost what was added.
    """

    def __init__(self, path: str, model: str) -> None:
        self.path = path
        self.model = model
        self.last_id = 0
        self.seconds: dict[int, list[Any]] = {}  # second -> [count, latency sum, max, classes]
        self.lock = threading.Lock()

    def update(self, connection: sqlite3.Connection) -> None:
        top = connection.execute("SELECT MAX(id) FROM predictions").fetchone()[0] or 0
        if top <= self.last_id:
            return
        rows = connection.execute(
            "SELECT CAST(timestamp AS INTEGER) AS s, prediction, COUNT(*), SUM(latency_ms), "
            "MAX(latency_ms) FROM predictions WHERE id > ? AND id <= ? AND model = ? "
            "GROUP BY s, prediction",
            (self.last_id, top, self.model),
        ).fetchall()
        for second, prediction, count, latency_sum, latency_max in rows:
            slot = self.seconds.get(second)
            if slot is None:
                slot = self.seconds[second] = [0, 0.0, 0.0, {}]
            slot[0] += count
            slot[1] += latency_sum or 0.0
            slot[2] = max(slot[2], latency_max or 0.0)
            label = str(json.loads(prediction)) if prediction is not None else "null"
            slot[3][label] = slot[3].get(label, 0) + count
        self.last_id = top

    def series(self, since: float, until: float) -> dict[str, Any]:
        """At most :data:`MAX_POINTS` buckets spanning the logged part of ``[since, until]``."""
        kept = sorted(second for second in self.seconds if second >= math.floor(since))
        start = float(kept[0]) if kept else since
        bucket = max(1.0, math.ceil(max(until - start, 1.0) / MAX_POINTS))
        buckets: dict[int, list[Any]] = {}
        totals: dict[str, int] = {}
        for second in kept:
            count, latency_sum, latency_max, classes = self.seconds[second]
            index = int((second - start) // bucket)
            slot = buckets.get(index)
            if slot is None:
                slot = buckets[index] = [0, 0.0, 0.0, {}]
            slot[0] += count
            slot[1] += latency_sum
            slot[2] = max(slot[2], latency_max)
            for label, value in classes.items():
                slot[3][label] = slot[3].get(label, 0) + value
                totals[label] = totals.get(label, 0) + value
        # Regression outputs are numbers: keep the busiest values only for the distribution.
        top = [label for label, _ in sorted(totals.items(), key=lambda kv: -kv[1])[:8]]
        ordered = sorted(buckets.items())
        return {
            "bucket_seconds": bucket,
            "time": [start + index * bucket for index, _ in ordered],
            "count": [slot[0] for _, slot in ordered],
            "latency_ms_mean": [slot[1] / slot[0] for _, slot in ordered],
            "latency_ms_max": [slot[2] for _, slot in ordered],
            "classes": top,
            "class_counts": {
                label: [slot[3].get(label, 0) for _, slot in ordered] for label in top
            },
            "total": sum(totals.values()),
        }


def _series(aggregates: _Aggregates, since: float, until: float) -> dict[str, Any]:
    """Traffic, latency and prediction distribution per time bucket, plus labelled rows."""
    connection = sqlite3.connect(f"file:{aggregates.path}?mode=ro", uri=True, timeout=10)
    try:
        with aggregates.lock:
            aggregates.update(connection)
            result = aggregates.series(since, until)
        has_feedback = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='feedback'"
        ).fetchone()
        labelled = 0
        if has_feedback:
            labelled = connection.execute(
                'SELECT COUNT(*) FROM (SELECT DISTINCT f.request_id, f."row" FROM feedback f '
                'JOIN predictions p ON p.request_id = f.request_id AND p."row" = f."row" '
                "WHERE p.model = ?)",
                (aggregates.model,),
            ).fetchone()[0]
    finally:
        connection.close()
    result["labelled"] = int(labelled)
    return result


def build_monitoring_router(state: Any) -> APIRouter:
    """The monitoring routes of a server (``state`` is its ``ServerState``)."""
    router = APIRouter()
    cache: dict[str, tuple[float, Any]] = {}
    aggregates: dict[tuple[str, str], _Aggregates] = {}

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
        from mlwright.errors import MlwrightError
        from mlwright.monitor import record_feedback

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
            body = json.loads(await request.body())
        except ValueError as err:
            return _json({"error": f"The body is not valid JSON ({err})."}, status=400)
        items = body.get("items") if isinstance(body, dict) and "items" in body else [body]
        if (
            not isinstance(items, list)
            or not items
            or not all(isinstance(item, dict) for item in items)
        ):
            return _json(
                {"error": 'Send {"request_id": ..., "actual": ...} or {"items": [...]}.'},
                status=422,
            )
        for item in items:
            unknown = sorted(set(item) - {"request_id", "actual", "row", "timestamp"})
            if unknown:
                return _json(
                    {
                        "error": f"Unknown field {unknown[0]!r} in the feedback; fields "
                        "are request_id, actual, row, timestamp."
                    },
                    status=422,
                )
            if not isinstance(item.get("row", 0), int) or isinstance(item.get("row"), bool):
                return _json(
                    {"error": "'row' must be a whole number (the row in the request)."}, status=422
                )
            stamp = item.get("timestamp")
            if stamp is not None and (
                not isinstance(stamp, (int, float)) or not math.isfinite(stamp)
            ):
                return _json({"error": "'timestamp' must be unix seconds."}, status=422)
            if isinstance(item.get("actual"), (dict, list)):
                return _json(
                    {"error": "'actual' must be one value (a label or a number)."}, status=422
                )
        loop = asyncio.get_running_loop()
        try:
            stored = await loop.run_in_executor(state.executor, record_feedback, uri, items)
        except MlwrightError as err:
            return _json({"error": str(err)}, status=422)
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
    async def dashboard_data(hours: float = 24.0) -> Response:
        if not (0 < hours <= 24 * 366):
            return _json({"error": "hours must be between 0 and 8784."}, status=422)
        key = f"all:{hours}"
        cached = cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return _json(cached[1])
        loop = asyncio.get_running_loop()
        payload = await loop.run_in_executor(state.executor, _payload, hours)
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

    def _payload(hours: float) -> dict[str, Any]:
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
            if path is None:
                entry["error"] = (
                    f"No SQLite prediction log to read (the server logs to {uri or 'nothing'})."
                )
                models.append(entry)
                continue
            key = (path, served.name)
            if key not in aggregates:
                aggregates[key] = _Aggregates(path, served.name)
            entry["series"] = _series(aggregates[key], since, now)
            entry.update(_model_health(served, uri))
            models.append(entry)
        return _clean({"generated": now, "hours": hours, "models": models, "requests": _requests()})

    def _model_health(served: Any, uri: str) -> dict[str, Any]:
        """Drift of the newest rows and live metrics, cached longer (they cost more)."""
        key = f"health:{served.name}:{served.version}"
        cached = cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < DRIFT_CACHE_SECONDS:
            return cached[1]
        from mlwright.errors import MlwrightError
        from mlwright.monitor import drift, live_performance, load_reference, read_log
        from mlwright.monitor._monitor import logged_predictions

        health: dict[str, Any] = {"drift": None, "performance": None}
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
        cache[key] = (time.monotonic(), health)
        return health

    return router
