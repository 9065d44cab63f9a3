"""Live performance: the model's metric on labelled production rows, window by window.

Each window (a period such as ``1d``, or every N labelled predictions) gets the metric with a
bootstrap confidence interval from :func:`mlwright.evaluate.bootstrap_interval`, the same
statistics as offline evaluation. It is compared with the model's validation interval (the
cross-validated score plus or minus 1.96 fold standard deviations): a window whose whole
interval lies on the wrong side of it is *below validation*, which is what the ``metric_drop``
alert rule fires on.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlwright.errors import ConfigError
from mlwright.evaluate import bootstrap_interval
from mlwright.evaluate._metrics import greater_is_better
from mlwright.monitor._reference import category_strings

_PERIOD = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$", re.IGNORECASE)
_COUNT = re.compile(r"^\s*(\d+)\s*(rows?|predictions?)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_period(text: str) -> float:
    """Seconds in ``"30m"``, ``"6h"``, ``"7d"``, ``"2w"``."""
    match = _PERIOD.match(str(text))
    if not match:
        raise ConfigError(
            f"Cannot read the period {text!r}: write a number and a unit, e.g. 30m, 6h, 1d, 7d."
        )
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]


def parse_window(text: str | int) -> tuple[str, float]:
    """``("time", seconds)`` for ``"1d"``; ``("rows", n)`` for ``"500"`` or ``"500rows"``."""
    if isinstance(text, int):
        return "rows", float(text)
    count = _COUNT.match(str(text))
    if count:
        n = int(count.group(1))
        if n < 1:
            raise ConfigError("A window needs at least 1 prediction, e.g. --window 500rows.")
        return "rows", float(n)
    try:
        return "time", parse_period(str(text))
    except ConfigError:
        raise ConfigError(
            f"Cannot read the window {text!r}: use a period (1d, 6h, 30m) or a number of "
            "predictions (500rows)."
        ) from None


@dataclass
class Window:
    """The live metric of one window."""

    start: float
    end: float
    n: int
    value: float | None
    lower: float | None
    upper: float | None
    below_validation: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            key: (None if isinstance(value, float) and not math.isfinite(value) else value)
            for key, value in asdict(self).items()
        }


@dataclass
class LivePerformance:
    """Windowed live metrics of a model.

    Attributes
    ----------
    metric, greater_is_better
        The metric (the model's training metric unless chosen).
    validation
        ``{"value", "lower", "upper"}``: the validation score and its interval.
    windows
        One :class:`Window` per window with labelled rows, oldest first.
    n_labelled
        Labelled rows used.
    """

    metric: str
    greater_is_better: bool
    validation: dict[str, float | None]
    windows: list[Window]
    n_labelled: int

    @property
    def below(self) -> list[Window]:
        return [window for window in self.windows if window.below_validation]

    def summary(self) -> str:
        if not self.windows:
            return (
                "No labelled predictions yet: send outcomes with POST /feedback or "
                "mlwright feedback."
            )
        last = self.windows[-1]
        value = "n/a" if last.value is None else f"{last.value:.4g}"
        interval = "" if last.lower is None else f" (95% CI [{last.lower:.4g}, {last.upper:.4g}])"
        validation = self.validation.get("value")
        shown = "n/a" if validation is None else f"{validation:.4g}"
        state = "BELOW validation" if last.below_validation else "within validation"
        return (
            f"Live {self.metric} {value}{interval} on the last window of {last.n} labelled rows: "
            f"{state} ({shown}); {len(self.below)} of {len(self.windows)} windows below."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "greater_is_better": self.greater_is_better,
            "validation": self.validation,
            "windows": [window.to_dict() for window in self.windows],
            "n_labelled": self.n_labelled,
            "n_below": len(self.below),
            "summary": self.summary(),
        }


def validation_interval(model: Any, metric: str) -> dict[str, float | None]:
    """The model's validation score and the interval live windows are compared with."""
    metrics = getattr(model, "metrics", {}) or {}
    if metrics.get("metric") != metric:
        return {"value": None, "lower": None, "upper": None}
    value = metrics.get("validation_score")
    spread = metrics.get("validation_std") or 0.0
    if value is None:
        return {"value": None, "lower": None, "upper": None}
    return {
        "value": float(value),
        "lower": float(value) - 1.96 * float(spread),
        "upper": float(value) + 1.96 * float(spread),
    }


def _y_pred(model: Any, labelled: Any) -> Any:
    if model.task == "regression":
        return pd.to_numeric(pd.Series(labelled.meta["prediction"]), errors="coerce").to_numpy(
            float
        )
    classes = [str(label) for label in model.classes or []]
    if labelled.probabilities is not None and all(
        c in labelled.probabilities.columns for c in classes
    ):
        return labelled.probabilities[classes].to_numpy(dtype=float)
    # Without logged probabilities, a one-hot of the predicted label.
    predicted = pd.Series(labelled.meta["prediction"]).astype(str).to_numpy()
    return (predicted[:, None] == np.asarray(classes)[None, :]).astype(float)


def _y_true(model: Any, labelled: Any) -> np.ndarray:
    actual = labelled.meta["actual"].to_numpy()
    if model.task == "regression":
        return pd.to_numeric(pd.Series(actual), errors="coerce").to_numpy(float)
    # Outcomes arrive as JSON (numbers or text); match them to the classes by their text.
    by_text = {str(label): label for label in model.classes or []}

    texts = category_strings(pd.Series(actual, dtype=object)).reindex(range(len(actual)))
    return np.asarray([by_text.get(text, text) for text in texts], dtype=object)


def live_performance(
    model: Any,
    log: Any,
    *,
    window: str | int = "1d",
    metric: str | None = None,
    n_resamples: int = 500,
    min_rows: int = 30,
    seed: int = 0,
) -> LivePerformance:
    """Windowed live metrics with bootstrap intervals, compared with validation.

    Parameters
    ----------
    model
        The served :class:`mlwright.model.Model`.
    log
        Its logged predictions with feedback (:func:`mlwright.monitor.read_log` with
        ``with_feedback=True``).
    window
        A period (``"1d"``, ``"6h"``) or a number of labelled predictions (``"500rows"``).
    metric
        The metric (default: the model's training metric).
    n_resamples, seed
        Bootstrap settings.
    min_rows
        Windows with fewer labelled rows are skipped (their interval would be meaningless).
    """
    metric = (
        metric
        or (model.metrics or {}).get("metric")
        or ("rmse" if model.task == "regression" else "accuracy")
    )
    higher = greater_is_better(metric, model.task)
    validation = validation_interval(model, metric)
    labelled = log.labelled()
    kind, size = parse_window(window)
    windows: list[Window] = []
    if len(labelled):
        y_true = _y_true(model, labelled)
        y_pred = _y_pred(model, labelled)
        stamps = labelled.meta["timestamp"].to_numpy(float)
        order = np.argsort(stamps, kind="stable")
        if kind == "rows":
            groups = [order[i : i + int(size)] for i in range(0, order.size, int(size))]
        else:
            buckets = np.floor(stamps[order] / size)
            cuts = np.flatnonzero(np.diff(buckets)) + 1
            groups = np.split(order, cuts)
        known = {str(label) for label in model.classes or []}
        for rows in groups:
            if model.task != "regression":
                rows = rows[[str(value) in known for value in y_true[rows]]]
            if rows.size < min_rows:
                continue
            classes = model.classes if model.task != "regression" else None
            try:
                interval = bootstrap_interval(
                    metric,
                    y_true[rows],
                    y_pred[rows],
                    task=model.task,
                    classes=classes,
                    n_resamples=n_resamples,
                    seed=seed,
                )
            except Exception:  # e.g. ROC AUC of a window holding one class only
                continue
            value, lower, upper = interval.value, interval.lower, interval.upper
            below = False
            if validation["lower"] is not None and math.isfinite(upper):
                below = upper < validation["lower"] if higher else lower > validation["upper"]
            windows.append(
                Window(
                    start=float(stamps[rows].min()),
                    end=float(stamps[rows].max()),
                    n=int(rows.size),
                    value=float(value),
                    lower=float(lower),
                    upper=float(upper),
                    below_validation=bool(below),
                )
            )
    return LivePerformance(
        metric=metric,
        greater_is_better=higher,
        validation=validation,
        windows=windows,
        n_labelled=len(labelled),
    )
