"""Prometheus metrics of the server (``GET /metrics``).

Each app has its own collector registry, so several servers (or tests) in one process keep
separate counts.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "ServeMetrics"]

# Sub-millisecond resolution: single-row predictions take about a millisecond.
LATENCY_BUCKETS = (
    0.00025,
    0.0005,
    0.00075,
    0.001,
    0.00125,
    0.0015,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.02,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)


class ServeMetrics:
    """The server's counters, histograms and gauges.

    Attributes
    ----------
    requests
        ``mlwright_requests_total{endpoint, status}``.
    latency
        ``mlwright_request_latency_seconds{endpoint}``.
    rows
        ``mlwright_rows_predicted_total{model, version}``.
    predictions
        ``mlwright_predictions_total{model, class}``: distribution of predicted classes.
    prediction_values
        ``mlwright_prediction_value{model}``: distribution of regression predictions.
    validation_failures
        ``mlwright_validation_failures_total{model, kind}``.
    log_dropped
        ``mlwright_log_dropped_records_total``: prediction-log rows that could not be written.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "mlwright_requests",
            "Requests by endpoint and HTTP (or gRPC) status.",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mlwright_request_latency_seconds",
            "Request latency inside the server.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rows = Counter(
            "mlwright_rows_predicted",
            "Rows predicted.",
            ["model", "version"],
            registry=self.registry,
        )
        self.predictions = Counter(
            "mlwright_predictions",
            "Predicted class counts (classification).",
            ["model", "class"],
            registry=self.registry,
        )
        self.prediction_values = Histogram(
            "mlwright_prediction_value",
            "Predicted values (regression).",
            ["model"],
            buckets=(-1e6, -1e3, -100, -10, -1, 0, 1, 10, 100, 1e3, 1e4, 1e5, 1e6),
            registry=self.registry,
        )
        self.validation_failures = Counter(
            "mlwright_validation_failures",
            "Requests refused by input validation, by kind.",
            ["model", "kind"],
            registry=self.registry,
        )
        self.log_dropped = Counter(
            "mlwright_log_dropped_records",
            "Prediction-log rows dropped (queue full or store failing).",
            registry=self.registry,
        )
        self.log_pending = Gauge(
            "mlwright_log_queue_requests",
            "Requests waiting for the prediction-log writer.",
            registry=self.registry,
        )
        self.model_info = Gauge(
            "mlwright_model_info",
            "Loaded models (value 1) by name and version.",
            ["model", "version"],
            registry=self.registry,
        )
        self.swaps = Counter(
            "mlwright_model_swaps",
            "Model versions swapped in by --watch.",
            ["model"],
            registry=self.registry,
        )
        self._request_children: dict[tuple[str, int], Any] = {}
        self._latency_children: dict[str, Any] = {}
        self._class_children: dict[tuple[str, str], Any] = {}
        self._row_children: dict[tuple[str, str], Any] = {}

    def observe_request(self, endpoint: str, status: int | str, seconds: float) -> None:
        """Count one finished request (children cached: this is on the hot path)."""
        key = (endpoint, status)
        child = self._request_children.get(key)  # type: ignore[arg-type]
        if child is None:
            child = self._request_children[key] = self.requests.labels(endpoint, str(status))  # type: ignore[index]
        child.inc()
        latency = self._latency_children.get(endpoint)
        if latency is None:
            latency = self._latency_children[endpoint] = self.latency.labels(endpoint)
        latency.observe(seconds)

    def observe_predictions(self, model: str, version: str, labels: list[Any], task: str) -> None:
        """Count rows and the predicted class (or value) distribution."""
        key = (model, version)
        rows = self._row_children.get(key)
        if rows is None:
            rows = self._row_children[key] = self.rows.labels(model, version)
        rows.inc(len(labels))
        if task == "regression":
            histogram = self.prediction_values.labels(model)
            for value in labels:
                histogram.observe(value)
            return
        if len(labels) == 1:
            self._class(model, labels[0]).inc()
            return
        counts: dict[Any, int] = {}
        for label in labels:
            counts[label] = counts.get(label, 0) + 1
        for label, count in counts.items():
            self._class(model, label).inc(count)

    def _class(self, model: str, label: Any) -> Any:
        key = (model, str(label))
        child = self._class_children.get(key)
        if child is None:
            child = self._class_children[key] = self.predictions.labels(model, str(label))
        return child

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)
