"""One monitoring pass over a served model: drift, live performance, traffic and alerts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlwright.errors import DataError
from mlwright.monitor._alerts import AlertConfig, deliver, evaluate_rules
from mlwright.monitor._drift import DriftReport, drift
from mlwright.monitor._feedback import LogData, read_log
from mlwright.monitor._performance import LivePerformance, live_performance, parse_window
from mlwright.monitor._reference import load_reference


@dataclass
class MonitorResult:
    """What ``mlwright monitor MODEL`` found.

    Attributes
    ----------
    model
        The served name the log was filtered on (None: every row of the log).
    drift
        Drift of the logged features (and predictions) against the model's reference.
    performance
        Live metrics per window (labelled rows only).
    traffic
        ``[{"start", "count", "latency_ms_p50"}]`` per window.
    alerts
        Alerts fired (dicts) and ``deliveries``.
    """

    model: str | None
    n_rows: int
    since: float | None
    drift: DriftReport | None
    performance: LivePerformance | None
    traffic: list[dict[str, Any]]
    alerts: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "n_rows": self.n_rows,
            "since": self.since,
            "drift": None if self.drift is None else self.drift.to_dict(),
            "performance": None if self.performance is None else self.performance.to_dict(),
            "traffic": self.traffic,
            "alerts": self.alerts,
            "deliveries": self.deliveries,
        }


def logged_predictions(model: Any, log: LogData) -> dict[str, Any]:
    """The logged outputs in the shape :func:`drift` compares with the reference."""
    labels = log.meta["prediction"].to_numpy()
    if model.task == "regression":
        return {"labels": labels, "scores": labels}
    scores = None
    if model.task == "binary" and log.probabilities is not None and model.classes:
        positive = str(model.classes[-1])
        if positive in log.probabilities.columns:
            scores = log.probabilities[positive].to_numpy(dtype=float)
    return {"labels": labels, "scores": scores}


def traffic_windows(log: LogData, seconds: float) -> list[dict[str, Any]]:
    """Predictions and median latency per time window."""
    if len(log) == 0:
        return []
    stamps = log.meta["timestamp"].to_numpy(float)
    buckets = np.floor(stamps / seconds).astype(np.int64)
    frame = pd.DataFrame({"bucket": buckets, "latency": log.meta["latency_ms"].to_numpy(float)})
    grouped = frame.groupby("bucket")["latency"].agg(["size", "median"])
    return [
        {
            "start": float(bucket * seconds),
            "count": int(row["size"]),
            "latency_ms_p50": float(row["median"]),
        }
        for bucket, row in grouped.iterrows()
    ]


def monitor_model(
    model: Any,
    log_uri: str,
    *,
    name: str | None = None,
    since: float | None = None,
    window: str = "1d",
    config: AlertConfig | None = None,
    requests: dict[str, float] | None = None,
    send: bool = True,
    limit: int | None = None,
) -> MonitorResult:
    """Drift, live performance, traffic and alerts of a model from its prediction log.

    Parameters
    ----------
    model
        The served :class:`mlwright.model.Model` (its reference is in its artifact).
    log_uri
        The prediction log the server writes.
    name
        The served model name to filter on (default: the rows of every name whose logged
        features match the model; pass it when one log holds several models).
    since
        Unix seconds: only predictions from then on.
    window
        Window of live metrics and traffic (``1d``, ``6h``, ``500rows``).
    config
        Alert rules and channels (default rules, log channel only).
    requests
        Request counts for the error-rate rule (``{"total", "errors"}``).
    send
        Deliver fired alerts to the channels.
    limit
        At most the newest ``limit`` rows.
    """
    config = config or AlertConfig.default()
    reference = load_reference(model)
    log = read_log(log_uri, model=name, since=since, limit=limit, with_feedback=True)
    drift_report = None
    if len(log):
        missing = [n for n in reference["features"] if n not in log.features.columns]
        if len(missing) == len(reference["features"]):
            raise DataError(
                f"The logged predictions in '{log_uri}' hold none of the model's features "
                f"({', '.join(list(reference['features'])[:8])}); is this the log of another "
                "model? Pass --name with the served model's name."
            )
        drift_report = drift(
            reference,
            log.features,
            settings=config.drift,
            predictions=logged_predictions(model, log),
        )
    performance = live_performance(model, log, window=window) if len(log) else None
    kind, size = parse_window(window)
    traffic = traffic_windows(log, size if kind == "time" else 86400.0)
    alerts = evaluate_rules(
        config,
        model=name or str(model.target),
        drift=drift_report,
        performance=performance,
        traffic=[item["count"] for item in traffic],
        requests=requests,
    )
    deliveries = deliver(alerts, config) if send else []
    return MonitorResult(
        model=name,
        n_rows=len(log),
        since=since,
        drift=drift_report,
        performance=performance,
        traffic=traffic,
        alerts=[alert.to_dict() for alert in alerts],
        deliveries=deliveries,
    )
