"""Evaluate, compare, recalibrate and re-threshold :class:`mlwright.Model` objects on data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_curve

from mlwright.data import read
from mlwright.errors import ConfigError, DataError
from mlwright.evaluate._calibration import (
    AdjustedPredictor,
    ProbabilityCalibrator,
    expected_calibration_error,
    fit_calibrator,
    reliability_curve,
)
from mlwright.evaluate._compare import Comparison, compare_prepared
from mlwright.evaluate._explain import _model_metric, decision_threshold
from mlwright.evaluate._fairness import (
    DEFAULT_DIFFERENCE_BOUND,
    DEFAULT_RATIO_BOUND,
    fairness_report,
)
from mlwright.evaluate._intervals import (
    Interval,
    check_resampling,
    percentile_interval,
    resample_weights,
)
from mlwright.evaluate._metrics import (
    DEFAULT_METRICS,
    EvalData,
    canonical_name,
    confusion_matrix,
    per_class_scores,
    prepare,
    residual_summary,
    weighted_metric,
)
from mlwright.evaluate._slices import slice_metrics
from mlwright.evaluate._threshold import ThresholdChoice, choose_threshold

# Curves for plots are thinned to this many points: enough for a smooth line on a page.
_CURVE_POINTS = 200


@dataclass
class Evaluation:
    """A model's measured performance on a set of rows.

    Attributes
    ----------
    task, target, n_rows
        What was evaluated.
    metric
        The model's primary metric (its training metric).
    metrics
        Every metric with its bootstrap interval, by name.
    per_class
        Classification: per class, ``class``, ``support`` and ``precision``/``recall``/``f1``
        each as an interval dict.
    confusion
        Classification: ``{"labels", "matrix"}``.
    residuals
        Regression: the residual summary.
    calibration
        Classification: ``ece`` and the reliability ``curve``.
    threshold
        Binary: the decision threshold used (``None`` means the arg-max, i.e. 0.5).
    slices, fairness
        Per-slice metrics (worst first) and fairness per sensitive column.
    curves
        Data for plots: ``roc`` and ``pr`` (binary), ``residuals`` (regression sample).
    settings
        ``n_resamples``, ``confidence``, ``seed``, ``dropped_rows``, ``source``.
    """

    task: str
    target: str
    n_rows: int
    metric: str
    metrics: dict[str, Interval]
    per_class: list[dict[str, Any]] = field(default_factory=list)
    confusion: dict[str, Any] | None = None
    residuals: dict[str, float] | None = None
    calibration: dict[str, Any] | None = None
    threshold: float | None = None
    slices: list[dict[str, Any]] = field(default_factory=list)
    fairness: list[dict[str, Any]] = field(default_factory=list)
    curves: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def warnings(self) -> list[str]:
        """Fairness warnings past their bounds."""
        return [text for result in self.fairness for text in result["warnings"]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (``mlwright evaluate --json``)."""
        return {
            "task": self.task,
            "target": self.target,
            "n_rows": self.n_rows,
            "metric": self.metric,
            "metrics": {name: value.to_dict() for name, value in self.metrics.items()},
            "per_class": self.per_class,
            "confusion_matrix": self.confusion,
            "residuals": self.residuals,
            "calibration": self.calibration,
            "threshold": self.threshold,
            "slices": self.slices,
            "fairness": self.fairness,
            "warnings": self.warnings,
            "settings": self.settings,
        }

    def flat_metrics(self) -> dict[str, float]:
        """``{name: value, name_lower: ..., name_upper: ...}`` for tracking systems."""
        flat: dict[str, float] = {}
        for name, interval in self.metrics.items():
            for suffix, value in (
                ("", interval.value),
                ("_lower", interval.lower),
                ("_upper", interval.upper),
            ):
                if np.isfinite(value):
                    flat[f"{name}{suffix}"] = float(value)
        if self.calibration is not None:
            flat["ece"] = float(self.calibration["ece"])
        return flat


def read_frame(data: Any, model: Any = None):
    """A DataFrame from a frame or any source :func:`mlwright.data.read` accepts.

    With ``model``, files are read the way its training data was (``model.reading_rule``).
    """
    if isinstance(data, pd.DataFrame):
        return data

    rule = getattr(model, "reading_rule", None) if model is not None else None
    return read(data, na_values=rule)


def model_rows(model: Any, data: Any) -> tuple[Any, np.ndarray, dict[str, Any]]:
    """The rows of ``data`` that have a target value, the target values, and what was dropped."""
    frame = read_frame(data, model)
    target = model.target
    if target not in frame.columns:
        raise DataError(
            f"The evaluation data has no column '{target}' (the model's target), so there is "
            "nothing to compare predictions with. Evaluate on labelled data that holds the "
            f"'{target}' column; columns found: {', '.join(map(str, list(frame.columns)[:20]))}."
        )
    labelled = frame[target].notna().to_numpy()
    dropped = int((~labelled).sum())
    if dropped:
        frame = frame.loc[labelled]
    frame = frame.reset_index(drop=True)
    if len(frame) == 0:
        raise DataError(
            f"Every row of the evaluation data has a missing '{target}'; evaluate on labelled rows."
        )
    y_true = frame[target].to_numpy()
    return frame, y_true, {"dropped_rows": dropped}


def predictions_of(model: Any, frame, y_true, *, threshold: float | None = None) -> EvalData:
    """The model's predictions on ``frame`` encoded against ``y_true``."""
    if model.task == "regression":
        prediction = np.asarray(model.predict(frame), dtype=float)
        return prepare(y_true, prediction, task="regression")
    proba = np.asarray(model.predict_proba(frame), dtype=float)
    if threshold is None:
        threshold = decision_threshold(model)
    return prepare(y_true, proba, task=model.task, classes=model.classes, threshold=threshold)


def evaluate(
    model: Any,
    data: Any,
    *,
    sensitive: list[str] | tuple[str, ...] = (),
    slices: list[str] | tuple[str, ...] | None = None,
    metrics: list[str] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    difference_bound: float = DEFAULT_DIFFERENCE_BOUND,
    ratio_bound: float = DEFAULT_RATIO_BOUND,
) -> Evaluation:
    """Measure a model on labelled data, every metric with a bootstrap confidence interval.

    Parameters
    ----------
    model
        A :class:`mlwright.Model` (see :func:`mlwright.load`).
    data
        Labelled rows (a DataFrame or a path) holding the model's inputs and its target.
    sensitive
        Columns to check fairness over (they need not be model inputs).
    slices
        Columns to report metrics per value for (default: the sensitive columns).
    metrics
        Metric names (default: the task's standard set).
    n_resamples, confidence, seed
        Bootstrap settings.
    difference_bound, ratio_bound
        Fairness warning bounds.

    Returns
    -------
    Evaluation
    """
    check_resampling(n_resamples, confidence)
    frame, y_true, dropped = model_rows(model, data)
    for option, names in (("sensitive", sensitive), ("slice", slices or ())):
        missing = [name for name in names if name not in frame.columns]
        if missing:
            raise DataError(
                f"The {option} column(s) {missing} are not in the evaluation data. Available "
                f"columns: {', '.join(map(str, list(frame.columns)[:30]))}. Pass --{option} "
                "with a column of the evaluation data (it need not be a model input)."
            )
    data_encoded = predictions_of(model, frame, y_true)
    task = model.task
    primary = canonical_name(_model_metric(model))
    names = [canonical_name(name) for name in (metrics or DEFAULT_METRICS[task])]
    if primary not in names and metrics is None:
        names.insert(0, primary)
    if data_encoded.proba is None:
        names = [name for name in names if name not in ("roc_auc", "pr_auc", "log_loss", "brier")]
    n = data_encoded.n_rows
    ones = np.ones((1, n))
    points = {name: float(weighted_metric(name, data_encoded, ones)[0]) for name in names}
    resampled: dict[str, list[np.ndarray]] = {name: [] for name in names}
    class_parts: dict[str, list[np.ndarray]] = {"precision": [], "recall": [], "f1": []}
    for weights in resample_weights(n, n_resamples, seed):
        for name in names:
            resampled[name].append(weighted_metric(name, data_encoded, weights))
        if task != "regression":
            scores = per_class_scores(data_encoded, weights)
            for kind in class_parts:
                class_parts[kind].append(scores[kind])
    intervals = {
        name: percentile_interval(points[name], np.concatenate(resampled[name]), confidence)
        for name in names
    }
    evaluation = Evaluation(
        task=task,
        target=model.target,
        n_rows=n,
        metric=primary,
        metrics=intervals,
        threshold=data_encoded.threshold if task == "binary" else None,
        settings={
            "n_resamples": int(n_resamples),
            "confidence": float(confidence),
            "seed": int(seed),
            **dropped,
            "source": str(data) if not hasattr(data, "columns") else "DataFrame",
        },
    )
    if task == "regression":
        evaluation.residuals = residual_summary(data_encoded)
        evaluation.curves["residuals"] = _residual_sample(data_encoded, seed)
    else:
        point_scores = per_class_scores(data_encoded, ones)
        for position, label in enumerate(data_encoded.classes):
            row: dict[str, Any] = {
                "class": _plain_label(label),
                "support": int(point_scores["support"][0, position]),
            }
            for kind, parts in class_parts.items():
                row[kind] = percentile_interval(
                    float(point_scores[kind][0, position]),
                    np.concatenate(parts)[:, position],
                    confidence,
                ).to_dict()
            evaluation.per_class.append(row)
        evaluation.confusion = confusion_matrix(data_encoded)
        evaluation.confusion["labels"] = [_plain_label(v) for v in evaluation.confusion["labels"]]
        curve = reliability_curve(
            data_encoded.y_true,
            data_encoded.proba,
            task=task,
            classes=list(range(data_encoded.n_classes)),
        )
        gaps = np.abs(np.asarray(curve["observed"]) - np.asarray(curve["mean_predicted"]))
        counts = np.asarray(curve["count"], dtype=float)
        curve["positive_label"] = _plain_label(data_encoded.positive_label)
        evaluation.calibration = {
            "ece": float((gaps * counts).sum() / counts.sum()),
            "curve": curve,
        }
        if task == "binary":
            evaluation.curves.update(_binary_curves(data_encoded))
    slice_columns = list(slices) if slices is not None else list(sensitive)
    if slice_columns:
        evaluation.slices = slice_metrics(
            frame, data_encoded, slice_columns, metric=primary, seed=seed
        )
    if sensitive:
        evaluation.fairness = [
            result.to_dict()
            for result in fairness_report(
                frame,
                data_encoded,
                list(sensitive),
                metric=primary,
                difference_bound=difference_bound,
                ratio_bound=ratio_bound,
            )
        ]
    return evaluation


def _plain_label(label: Any) -> Any:
    return label.item() if isinstance(label, np.generic) else label


def _thin(*arrays: np.ndarray) -> list[list[float]]:
    if len(arrays[0]) <= _CURVE_POINTS:
        return [np.asarray(a, dtype=float).tolist() for a in arrays]
    keep = np.unique(np.linspace(0, len(arrays[0]) - 1, _CURVE_POINTS).astype(int))
    return [np.asarray(a, dtype=float)[keep].tolist() for a in arrays]


def _binary_curves(data: EvalData) -> dict[str, Any]:
    truth = (data.y_true == data.positive_index).astype(int)
    score = data.proba[:, data.positive_index]
    if truth.min() == truth.max():
        return {}
    fpr, tpr, _ = roc_curve(truth, score)
    precision, recall, _ = precision_recall_curve(truth, score)
    fpr, tpr = _thin(fpr, tpr)
    recall, precision = _thin(recall, precision)
    return {
        "roc": {"fpr": fpr, "tpr": tpr},
        "pr": {"recall": recall, "precision": precision, "base_rate": float(truth.mean())},
    }


def _residual_sample(data: EvalData, seed: int, limit: int = 2000) -> dict[str, list[float]]:
    rows = np.arange(data.n_rows)
    if data.n_rows > limit:
        rows = np.sort(np.random.default_rng(seed).choice(rows, limit, replace=False))
    return {"predicted": data.pred[rows].tolist(), "actual": data.y_true[rows].tolist()}


def compare(
    model_a: Any,
    model_b: Any,
    data: Any,
    *,
    metric: str | None = None,
    alpha: float = 0.05,
    n_resamples: int = 1000,
    seed: int = 0,
    names: tuple[str, str] = ("A", "B"),
) -> Comparison:
    """Compare two models on the same labelled rows: is B better than A?

    Parameters
    ----------
    model_a, model_b
        Two :class:`mlwright.Model` objects for the same target and task (A is usually the
        champion, B the challenger).
    data
        Labelled rows (a DataFrame or a path).
    metric
        The metric to compare on (default: model A's training metric).
    alpha
        Significance level of the verdict.
    n_resamples, seed
        Bootstrap settings (both models see the same resamples).
    names
        Display names of A and B.

    Returns
    -------
    Comparison
    """
    if model_a.task != model_b.task or model_a.target != model_b.target:
        raise DataError(
            f"The two models predict different things (A: '{model_a.target}', "
            f"{model_a.task}; B: '{model_b.target}', {model_b.task}); compare models trained "
            "for the same target."
        )
    if model_a.task != "regression" and [str(c) for c in model_a.classes] != [
        str(c) for c in model_b.classes
    ]:
        raise DataError(
            f"The two models know different classes ({model_a.classes} vs {model_b.classes}); "
            "compare models trained on the same labels."
        )
    frame, y_true, _ = model_rows(model_a, data)
    data_a = predictions_of(model_a, frame, y_true)
    data_b = predictions_of(model_b, frame, y_true)
    return compare_prepared(
        data_a,
        data_b,
        metric=metric or _model_metric(model_a),
        alpha=alpha,
        n_resamples=n_resamples,
        seed=seed,
        names=names,
    )


def _rebuilt(model: Any, predictor: Any, info_updates: dict[str, Any]) -> Any:
    """A copy of ``model`` with another predictor and extra ``model.json`` entries."""
    info = {**model.info, **info_updates}
    return type(model)(
        predictor,
        model.schema,
        info=info,
        metrics=model.metrics,
        lineage=model.lineage,
        findings=getattr(model, "findings", None),
        path=model.path,
    )


def tune_threshold(model: Any, data: Any, **objective: Any) -> tuple[Any, ThresholdChoice]:
    """Choose a binary model's decision threshold on labelled held-out rows.

    Parameters
    ----------
    model
        A binary :class:`mlwright.Model`.
    data
        Held-out labelled rows (not the training rows).
    **objective
        Arguments of :func:`mlwright.evaluate.choose_threshold` (``objective``, ``target``,
        ``cost_false_positive``, ``cost_false_negative``).

    Returns
    -------
    (Model, ThresholdChoice)
        A new model whose ``predict`` applies the threshold (save it to keep it), and the
        choice with what it achieves on ``data``.
    """
    if model.task != "binary":
        raise ConfigError(
            f"A decision threshold applies to binary classifiers; this model is {model.task}."
        )
    frame, y_true, _ = model_rows(model, data)
    proba = np.asarray(model.predict_proba(frame), dtype=float)
    choice = choose_threshold(y_true, proba, classes=model.classes, **objective)
    predictor = AdjustedPredictor(model.predictor, threshold=choice.threshold, positive_index=1)
    return _rebuilt(model, predictor, {"decision_threshold": choice.to_dict()}), choice


def calibrate(model: Any, data: Any, *, method: str = "isotonic") -> tuple[Any, dict[str, Any]]:
    """Fit isotonic or sigmoid calibration of a classifier on labelled held-out rows.

    Returns
    -------
    (Model, dict)
        A new model whose ``predict_proba`` is calibrated (any decision threshold is kept),
        and ``method``, ``n_rows``, ``ece_before``, ``ece_after`` (on ``data`` itself: an
        optimistic figure; evaluate on other rows for an honest one).
    """

    if model.task == "regression":
        raise ConfigError("Calibration applies to classifiers; this model predicts a number.")
    frame, y_true, _ = model_rows(model, data)
    proba = np.asarray(model.predict_proba(frame), dtype=float)
    calibrator: ProbabilityCalibrator = fit_calibrator(
        y_true, proba, method=method, classes=model.classes, task=model.task
    )
    existing = model.predictor
    threshold = (
        getattr(existing, "threshold", None) if isinstance(existing, AdjustedPredictor) else None
    )
    predictor = AdjustedPredictor(existing, calibrator=calibrator, threshold=threshold)
    predictor.calibrator = calibrator
    calibrated = calibrator.transform(proba)
    summary = {
        "method": method,
        "n_rows": int(len(y_true)),
        "ece_before": expected_calibration_error(
            y_true, proba, classes=model.classes, task=model.task
        ),
        "ece_after": expected_calibration_error(
            y_true, calibrated, classes=model.classes, task=model.task
        ),
    }
    return _rebuilt(model, predictor, {"calibration": summary}), summary
