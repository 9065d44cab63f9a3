"""Metrics as weighted statistics, so one code path gives the point value and every resample.

Each metric is a function ``f(data, weights) -> values`` where ``weights`` is a
``(resamples, rows)`` matrix of bootstrap draw counts; the point estimate is the same function
with a single row of ones. The formulas follow scikit-learn's definitions (a test checks every
one of them against scikit-learn on the full data), including its conventions for undefined
cases: a precision with no predicted positives is 0, a macro average runs over the classes seen
in the true or predicted labels, ROC AUC is undefined (NaN) when a resample holds one class.

Metric names are those of the training engine (``mlwright.automl``); a name this module does
not compute itself is delegated to the engine's own definition, one resample at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlwright.automl import get_metric
from mlwright.errors import ConfigError, DataError

TASKS = ("binary", "multiclass", "regression")
_EPS = np.finfo(np.float64).eps
# The training engine clips probabilities to [1e-15, 1 - 1e-15] for log loss; use the same so
# evaluation and training report the same number.
_PROBA_CLIP = 1e-15


@dataclass
class EvalData:
    """True and predicted values of one model on one set of rows, encoded for metrics.

    For classification ``y_true`` and ``pred`` hold class *codes* (positions in ``classes``);
    ``proba`` holds one column per class when probabilities are known. For regression they are
    float values and ``proba`` is ``None``.
    """

    task: str
    y_true: np.ndarray
    pred: np.ndarray
    proba: np.ndarray | None = None
    classes: list | None = None
    threshold: float | None = None
    positive_index: int = 1
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def n_rows(self) -> int:
        return int(self.y_true.shape[0])

    @property
    def n_classes(self) -> int:
        return len(self.classes) if self.classes is not None else 0

    @property
    def positive_label(self) -> Any:
        return self.classes[self.positive_index] if self.task == "binary" else None

    def labels(self, codes: np.ndarray) -> np.ndarray:
        """Original class labels for an array of codes."""
        return np.asarray(self.classes, dtype=object)[codes]

    def subset(self, rows: np.ndarray) -> EvalData:
        """The same predictions restricted to some rows (a boolean mask or positions)."""
        return EvalData(
            task=self.task,
            y_true=self.y_true[rows],
            pred=self.pred[rows],
            proba=None if self.proba is None else self.proba[rows],
            classes=self.classes,
            threshold=self.threshold,
            positive_index=self.positive_index,
        )


def encode_labels(values, classes: list, what: str = "y_true") -> np.ndarray:
    """Positions of ``values`` in ``classes``; labels compare as themselves, then as text."""
    values = np.asarray(values, dtype=object)
    index = pd.Index(list(classes), dtype=object)
    codes = index.get_indexer(values)
    if (codes < 0).any():
        # A CSV read back may turn the model's 1/0 labels into "1"/"0" or the reverse.
        by_text = pd.Index([str(label) for label in classes], dtype=object)
        codes = by_text.get_indexer(np.asarray([str(v) for v in values], dtype=object))
    if (codes < 0).any():
        unknown = sorted({str(v) for v in values[codes < 0]})[:5]
        if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in values[codes < 0]):
            raise DataError(
                f"{what} has missing labels ({int((codes < 0).sum())} rows). Drop the rows "
                "without a true label before evaluating."
            )
        raise DataError(
            f"{what} has labels {unknown} that are not among the model's classes "
            f"{[str(c) for c in classes]}. Evaluate on data with the same target labels as "
            "the training data."
        )
    return codes.astype(np.int64)


def infer_task(y_true, y_pred) -> str:
    """Binary, multiclass or regression from the shapes and types of the inputs."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_pred.ndim == 2:
        return "binary" if y_pred.shape[1] == 2 else "multiclass"
    if y_true.dtype.kind == "f" and len(np.unique(y_true)) > 2:
        return "regression"
    if y_true.dtype.kind in "iub" or y_true.dtype.kind == "f":
        distinct = len(np.unique(y_true))
        if distinct > 20 and y_true.dtype.kind != "b":
            return "regression"
        return "binary" if distinct <= 2 else "multiclass"
    return "binary" if len(np.unique(y_true.astype(str))) <= 2 else "multiclass"


def prepare(
    y_true,
    y_pred,
    *,
    task: str | None = None,
    classes=None,
    threshold: float | None = None,
    positive_label=None,
) -> EvalData:
    """Encode true values and predictions for the metric functions.

    Parameters
    ----------
    y_true
        True labels or values.
    y_pred
        Classification: probabilities ``(n, n_classes)`` in the order of ``classes``, the
        positive-class probability ``(n,)`` for a binary task, or predicted labels (any
        non-float array). Regression: predicted values.
    task
        ``"binary"``, ``"multiclass"`` or ``"regression"`` (inferred when omitted).
    classes
        Class labels in probability-column order; default: sorted distinct labels of
        ``y_true`` (and of ``y_pred`` when it holds labels).
    threshold
        Binary only: the positive-class probability from which the positive class is
        predicted (default 0.5).
    positive_label
        Binary only: which class is positive (default: the last of ``classes``).
    """
    if isinstance(y_pred, EvalData):
        return y_pred
    if hasattr(y_pred, "columns") and classes is None:
        classes = list(y_pred.columns)
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.ndim != 1:
        raise DataError(f"y_true must be one column of values; got shape {y_true.shape}.")
    if y_pred.shape[0] != y_true.shape[0]:
        raise DataError(
            f"The predictions have {y_pred.shape[0]} rows but the true values have "
            f"{y_true.shape[0]}; pass predictions for exactly the rows that have true values."
        )
    if y_true.shape[0] == 0:
        raise DataError("There are no rows to evaluate: the data has 0 rows with a target.")
    task = task or infer_task(y_true, y_pred)
    if task not in TASKS:
        raise ConfigError(f"Unknown task {task!r}; use one of {', '.join(TASKS)}.")
    if task == "regression":
        return _prepare_regression(y_true, y_pred)

    probabilities = y_pred.ndim == 2 or y_pred.dtype.kind == "f"
    if classes is None:
        observed = list(y_true) if probabilities else list(y_true) + list(y_pred)
        classes = sorted(set(observed), key=str)
        if task == "binary" and len(classes) == 1 and y_pred.ndim == 2:
            raise DataError(
                "Only one class appears in y_true and no class list was given; pass classes."
            )
    classes = list(classes)
    if task == "binary" and len(classes) != 2:
        raise DataError(
            f"A binary task needs exactly 2 classes; got {len(classes)}: "
            f"{[str(c) for c in classes][:10]}."
        )
    codes = encode_labels(y_true, classes)
    positive_index = 1
    if positive_label is not None:
        positive_index = int(encode_labels([positive_label], classes, "positive_label")[0])
    if probabilities:
        proba = y_pred.astype(np.float64)
        if proba.ndim == 1:
            if task != "binary":
                raise DataError(
                    "A single column of probabilities only fits a binary task; pass one "
                    "column per class for a multiclass task."
                )
            positive = np.clip(proba, 0.0, 1.0)
            proba = np.empty((len(positive), 2))
            proba[:, positive_index] = positive
            proba[:, 1 - positive_index] = 1.0 - positive
        if proba.shape[1] != len(classes):
            raise DataError(
                f"The probabilities have {proba.shape[1]} columns but there are "
                f"{len(classes)} classes; pass one column per class, in class order."
            )
        if not np.isfinite(proba).all():
            raise DataError("The predicted probabilities contain NaN or infinite values.")
        data = EvalData(task, codes, codes, proba, classes, threshold, positive_index)
        data.pred = predicted_codes(data, threshold)
        return data
    pred_codes = encode_labels(y_pred, classes, "the predicted labels")
    return EvalData(task, codes, pred_codes, None, classes, None, positive_index)


def _prepare_regression(y_true, y_pred) -> EvalData:
    try:
        truth = y_true.astype(np.float64)
        pred = y_pred.astype(np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise DataError(
            f"Regression needs numeric true and predicted values ({err}). Check that the "
            "target column holds numbers."
        ) from err
    if not (np.isfinite(truth).all() and np.isfinite(pred).all()):
        raise DataError(
            "The true or predicted values contain NaN or infinite values; drop rows without "
            "a target before evaluating."
        )
    return EvalData("regression", truth, pred)


def predicted_codes(data: EvalData, threshold: float | None = None) -> np.ndarray:
    """Predicted class codes: a threshold on the positive class (binary) or the argmax.

    Without a threshold the arg-max is used, as the model's own ``predict`` and the training
    engine's label metrics do.
    """
    if data.proba is None:
        return data.pred
    if data.task == "binary" and threshold is not None:
        positive = data.proba[:, data.positive_index] >= float(threshold)
        return np.where(positive, data.positive_index, 1 - data.positive_index)
    return np.argmax(data.proba, axis=1)


# ---------------------------------------------------------------------------------------------
# classification from confusion matrices


def confusion_counts(data: EvalData, weights: np.ndarray) -> np.ndarray:
    """Weighted confusion matrices ``(B, k, k)``: rows are true classes, columns predictions."""
    last = data._cache.get("confusion")
    if last is not None and last[0] is weights:
        return last[1]
    k = data.n_classes
    key = "onehot_confusion"
    onehot = data._cache.get(key)
    if onehot is None:
        code = data.y_true * k + data.pred
        onehot = np.zeros((data.n_rows, k * k))
        onehot[np.arange(data.n_rows), code] = 1.0
        data._cache[key] = onehot
    matrices = (weights @ onehot).reshape(-1, k, k)
    # Every label metric of one resample chunk shares these matrices.
    data._cache["confusion"] = (weights, matrices)
    return matrices


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Elementwise division with 0 where the denominator is 0 (scikit-learn's convention)."""
    out = np.zeros(np.broadcast(numerator, denominator).shape)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def per_class_scores(data: EvalData, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class, each ``(B, k)``."""
    matrices = confusion_counts(data, weights)
    true_positive = np.diagonal(matrices, axis1=1, axis2=2)
    support = matrices.sum(axis=2)
    predicted = matrices.sum(axis=1)
    return {
        "precision": _divide(true_positive, predicted),
        "recall": _divide(true_positive, support),
        "f1": _divide(2.0 * true_positive, support + predicted),
        "support": support,
        "predicted": predicted,
    }


def _averaged(kind: str, average: str) -> Callable[[EvalData, np.ndarray], np.ndarray]:
    def metric(data: EvalData, weights: np.ndarray) -> np.ndarray:
        scores = per_class_scores(data, weights)
        values = scores[kind]
        if average == "binary" and data.task == "binary":
            return values[:, data.positive_index]
        if average == "weighted":
            support = scores["support"]
            return _divide((values * support).sum(axis=1), support.sum(axis=1))
        # macro over classes present in the true or the predicted labels, as scikit-learn
        present = (scores["support"] + scores["predicted"]) > 0
        return _divide((values * present).sum(axis=1), present.sum(axis=1))

    return metric


def _accuracy(data: EvalData, weights: np.ndarray) -> np.ndarray:
    correct = (data.y_true == data.pred).astype(np.float64)
    return weights @ correct / weights.sum(axis=1)


def _balanced_accuracy(data: EvalData, weights: np.ndarray) -> np.ndarray:
    scores = per_class_scores(data, weights)
    present = scores["support"] > 0
    return _divide((scores["recall"] * present).sum(axis=1), present.sum(axis=1))


def _mcc(data: EvalData, weights: np.ndarray) -> np.ndarray:
    matrices = confusion_counts(data, weights)
    true_sum = matrices.sum(axis=2)
    pred_sum = matrices.sum(axis=1)
    correct = np.trace(matrices, axis1=1, axis2=2)
    total = matrices.sum(axis=(1, 2))
    covariance = correct * total - (true_sum * pred_sum).sum(axis=1)
    variance_pred = total**2 - (pred_sum**2).sum(axis=1)
    variance_true = total**2 - (true_sum**2).sum(axis=1)
    denominator = np.sqrt(variance_pred * variance_true)
    return _divide(covariance, denominator)


# ---------------------------------------------------------------------------------------------
# probability metrics


def _require_proba(data: EvalData, name: str) -> np.ndarray:
    if data.proba is None:
        raise ConfigError(
            f"The metric {name!r} needs predicted probabilities, but only predicted labels "
            "were given. Pass class probabilities (predict_proba) to evaluate it."
        )
    return data.proba


def _log_loss(data: EvalData, weights: np.ndarray) -> np.ndarray:
    proba = _require_proba(data, "log_loss")
    clipped = np.clip(proba, _PROBA_CLIP, 1.0 - _PROBA_CLIP)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    losses = -np.log(clipped[np.arange(data.n_rows), data.y_true])
    return weights @ losses / weights.sum(axis=1)


def _brier(data: EvalData, weights: np.ndarray) -> np.ndarray:
    proba = _require_proba(data, "brier")
    onehot = np.eye(data.n_classes)[data.y_true]
    if data.task == "binary":
        column = data.positive_index
        losses = (proba[:, column] - onehot[:, column]) ** 2
    else:
        losses = ((proba - onehot) ** 2).sum(axis=1)
    return weights @ losses / weights.sum(axis=1)


def _grouped(data: EvalData, weights: np.ndarray, column: int) -> tuple[np.ndarray, np.ndarray]:
    """Weighted positives and negatives per distinct score of one class, ascending scores.

    Shared by ROC AUC and average precision; the last result is kept so that both metrics on
    the same resample chunk sort and sum once.
    """
    last = data._cache.get("grouped")
    if last is not None and last[0] is weights and last[1] == column:
        return last[2], last[3]
    key = ("ties", column)
    cached = data._cache.get(key)
    if cached is None:
        scores = data.proba[:, column]
        order = np.argsort(scores, kind="mergesort")
        ordered = scores[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        positive = (data.y_true[order] == column).astype(np.float64)
        cached = (order, starts if starts.size < len(order) else None, positive)
        data._cache[key] = cached
    order, starts, positive = cached
    ordered = np.take(weights, order, axis=1)
    group_positive = ordered * positive
    if starts is None:  # no tied scores: every row is its own group
        group_negative = ordered - group_positive
    else:
        group_positive = np.add.reduceat(group_positive, starts, axis=1)
        group_negative = np.add.reduceat(ordered, starts, axis=1) - group_positive
    data._cache["grouped"] = (weights, column, group_positive, group_negative)
    return group_positive, group_negative


def _binary_auc(data: EvalData, weights: np.ndarray, column: int) -> np.ndarray:
    """Weighted one-vs-rest ROC AUC of one class (ties count one half)."""
    group_positive, group_negative = _grouped(data, weights, column)
    negative_below = np.cumsum(group_negative, axis=1) - group_negative
    numerator = (group_positive * (negative_below + 0.5 * group_negative)).sum(axis=1)
    denominator = group_positive.sum(axis=1) * group_negative.sum(axis=1)
    return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)


def _binary_average_precision(data: EvalData, weights: np.ndarray, column: int) -> np.ndarray:
    """Weighted average precision of one class, scikit-learn's step-wise definition."""
    group_positive, group_negative = _grouped(data, weights, column)
    # thresholds run from the highest score down: counts at or above each distinct score
    true_positive = np.cumsum(group_positive[:, ::-1], axis=1)
    false_positive = np.cumsum(group_negative[:, ::-1], axis=1)
    precision = _divide(true_positive, true_positive + false_positive)
    total_positive = true_positive[:, -1]
    summed = (group_positive[:, ::-1] * precision).sum(axis=1)
    return np.where(
        total_positive > 0, summed / np.where(total_positive > 0, total_positive, 1), np.nan
    )


def _one_vs_rest(
    single: Callable[[EvalData, np.ndarray, int], np.ndarray], name: str
) -> Callable[[EvalData, np.ndarray], np.ndarray]:
    def metric(data: EvalData, weights: np.ndarray) -> np.ndarray:
        _require_proba(data, name)
        if data.task == "binary":
            return single(data, weights, data.positive_index)
        # Macro average over the classes present (as the training engine); scikit-learn
        # would refuse a resample missing a class, which would bias the interval.
        values = np.stack([single(data, weights, k) for k in range(data.n_classes)], axis=1)
        defined = np.isfinite(values)
        summed = np.where(defined, values, 0.0).sum(axis=1)
        count = defined.sum(axis=1)
        return np.where(count > 0, summed / np.maximum(count, 1), np.nan)

    return metric


# ---------------------------------------------------------------------------------------------
# regression


def _errors(data: EvalData) -> np.ndarray:
    return data.pred - data.y_true


def _mse(data: EvalData, weights: np.ndarray) -> np.ndarray:
    return weights @ (_errors(data) ** 2) / weights.sum(axis=1)


def _rmse(data: EvalData, weights: np.ndarray) -> np.ndarray:
    return np.sqrt(_mse(data, weights))


def _mae(data: EvalData, weights: np.ndarray) -> np.ndarray:
    return weights @ np.abs(_errors(data)) / weights.sum(axis=1)


def _r2(data: EvalData, weights: np.ndarray) -> np.ndarray:
    total = weights.sum(axis=1)
    residual = weights @ (_errors(data) ** 2)
    spread = weights @ (data.y_true**2) - (weights @ data.y_true) ** 2 / total
    # scikit-learn: a constant target scores 1 when predicted exactly and 0 otherwise
    exact = residual <= 0
    with np.errstate(invalid="ignore", divide="ignore"):
        value = 1.0 - residual / np.where(spread > 0, spread, 1.0)
    return np.where(spread > 1e-12 * np.maximum(total, 1), value, np.where(exact, 1.0, 0.0))


def _mape(data: EvalData, weights: np.ndarray) -> np.ndarray:
    relative = np.abs(_errors(data)) / np.maximum(np.abs(data.y_true), _EPS)
    return weights @ relative / weights.sum(axis=1)


# ---------------------------------------------------------------------------------------------
# the table of metrics


@dataclass(frozen=True)
class MetricDefinition:
    """A metric mlwright computes for every bootstrap resample at once."""

    name: str
    function: Callable[[EvalData, np.ndarray], np.ndarray]
    greater_is_better: bool
    tasks: tuple[str, ...]
    needs_proba: bool = False
    description: str = ""


_CLASSIFICATION = ("binary", "multiclass")
_DEFINITIONS = [
    MetricDefinition("accuracy", _accuracy, True, _CLASSIFICATION, description="share correct"),
    MetricDefinition(
        "balanced_accuracy",
        _balanced_accuracy,
        True,
        _CLASSIFICATION,
        description="mean recall over classes",
    ),
    MetricDefinition(
        "precision",
        _averaged("precision", "binary"),
        True,
        _CLASSIFICATION,
        description="positive class (binary) or macro average",
    ),
    MetricDefinition(
        "recall",
        _averaged("recall", "binary"),
        True,
        _CLASSIFICATION,
        description="positive class (binary) or macro average",
    ),
    MetricDefinition(
        "f1",
        _averaged("f1", "binary"),
        True,
        _CLASSIFICATION,
        description="positive class (binary) or macro average",
    ),
    MetricDefinition("precision_macro", _averaged("precision", "macro"), True, _CLASSIFICATION),
    MetricDefinition("recall_macro", _averaged("recall", "macro"), True, _CLASSIFICATION),
    MetricDefinition("f1_macro", _averaged("f1", "macro"), True, _CLASSIFICATION),
    MetricDefinition(
        "precision_weighted", _averaged("precision", "weighted"), True, _CLASSIFICATION
    ),
    MetricDefinition("recall_weighted", _averaged("recall", "weighted"), True, _CLASSIFICATION),
    MetricDefinition("f1_weighted", _averaged("f1", "weighted"), True, _CLASSIFICATION),
    MetricDefinition(
        "mcc", _mcc, True, _CLASSIFICATION, description="Matthews correlation coefficient"
    ),
    MetricDefinition(
        "roc_auc",
        _one_vs_rest(_binary_auc, "roc_auc"),
        True,
        _CLASSIFICATION,
        True,
        "area under the ROC curve (one-vs-rest macro for multiclass)",
    ),
    MetricDefinition(
        "pr_auc",
        _one_vs_rest(_binary_average_precision, "pr_auc"),
        True,
        _CLASSIFICATION,
        True,
        "average precision (one-vs-rest macro for multiclass)",
    ),
    MetricDefinition("log_loss", _log_loss, False, _CLASSIFICATION, True, "cross-entropy"),
    MetricDefinition(
        "brier", _brier, False, _CLASSIFICATION, True, "mean squared probability error"
    ),
    MetricDefinition("rmse", _rmse, False, ("regression",), description="root mean squared error"),
    MetricDefinition("mse", _mse, False, ("regression",), description="mean squared error"),
    MetricDefinition("mae", _mae, False, ("regression",), description="mean absolute error"),
    MetricDefinition("r2", _r2, True, ("regression",), description="coefficient of determination"),
    MetricDefinition(
        "mape", _mape, False, ("regression",), description="mean absolute percentage error"
    ),
]
METRICS: dict[str, MetricDefinition] = {definition.name: definition for definition in _DEFINITIONS}
# Spellings the training engine or users may use for the same quantities.
ALIASES = {
    "auc": "roc_auc",
    "average_precision": "pr_auc",
    "logloss": "log_loss",
    "neg_log_loss": "log_loss",
    "brier_score": "brier",
    "matthews_corrcoef": "mcc",
    "f1_binary": "f1",
    "root_mean_squared_error": "rmse",
    "mean_absolute_error": "mae",
}

#: Metrics reported by default, in report order.
DEFAULT_METRICS = {
    "binary": [
        "roc_auc",
        "pr_auc",
        "accuracy",
        "balanced_accuracy",
        "precision",
        "recall",
        "f1",
        "f1_macro",
        "f1_weighted",
        "mcc",
        "log_loss",
        "brier",
    ],
    "multiclass": [
        "accuracy",
        "balanced_accuracy",
        "log_loss",
        "roc_auc",
        "pr_auc",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "precision_weighted",
        "recall_weighted",
        "f1_weighted",
        "mcc",
        "brier",
    ],
    "regression": ["rmse", "mae", "r2", "mape"],
}


def metric_names(task: str) -> list[str]:
    """Names of the metrics mlwright computes with intervals for a task."""
    return [name for name, definition in METRICS.items() if task in definition.tasks]


def canonical_name(name: str) -> str:
    """The metric's name in this module's table (aliases resolved, case folded)."""
    key = str(name).strip().lower()
    return ALIASES.get(key, key)


def greater_is_better(name: str, task: str | None = None) -> bool:
    """Whether larger values of the metric are better."""
    definition = METRICS.get(canonical_name(name))
    if definition is not None:
        return definition.greater_is_better
    return _engine_metric(name, task).greater_is_better


def weighted_metric(name: str, data: EvalData, weights: np.ndarray) -> np.ndarray:
    """Value of a metric for each row of a bootstrap weight matrix ``(B, n)``.

    Unknown names are looked up in the training engine's metric table and computed there
    on the resampled rows, so that every metric the engine trains for can be evaluated.
    """
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    definition = METRICS.get(canonical_name(name))
    if definition is None:
        return _engine_weighted(name, data, weights)
    if data.task not in definition.tasks:
        raise ConfigError(
            f"The metric {name!r} does not apply to a {data.task} task; use one of "
            f"{', '.join(metric_names(data.task))}."
        )
    if definition.needs_proba:
        _require_proba(data, definition.name)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(definition.function(data, weights), dtype=np.float64)


def _engine_metric(name: str, task: str | None):
    try:
        return get_metric(name, task)
    except Exception as err:  # the engine raises its own error type for unknown names
        raise ConfigError(
            f"Unknown metric {name!r} for a {task} task. Known metrics: "
            f"{', '.join(metric_names(task) if task else sorted(METRICS))}."
        ) from err


def _engine_weighted(name: str, data: EvalData, weights: np.ndarray) -> np.ndarray:
    metric = _engine_metric(name, data.task)
    rows = np.arange(data.n_rows)
    values = np.empty(weights.shape[0])
    for position, counts in enumerate(weights):
        chosen = np.repeat(rows, counts.astype(np.int64))
        if data.task == "regression":
            truth, prediction = data.y_true[chosen], data.pred[chosen]
        else:
            truth = data.labels(data.y_true[chosen])
            prediction = (
                data.proba[chosen] if data.proba is not None else data.labels(data.pred[chosen])
            )
        try:
            values[position] = float(metric.score(truth, prediction, data.classes))
        except ValueError:
            values[position] = np.nan
    return values


# ---------------------------------------------------------------------------------------------
# descriptive summaries (no intervals)


def confusion_matrix(data: EvalData) -> dict[str, Any]:
    """The confusion matrix with its labels: ``{"labels": [...], "matrix": [[...]]}``."""
    matrix = confusion_counts(data, np.ones((1, data.n_rows)))[0].astype(np.int64)
    return {"labels": list(data.classes), "matrix": matrix.tolist()}


def residual_summary(data: EvalData) -> dict[str, float]:
    """Residuals (predicted minus true): mean, spread, quantiles, largest error."""
    residuals = _errors(data)
    quantiles = np.percentile(residuals, [5, 25, 50, 75, 95])
    return {
        "mean": float(residuals.mean()),
        "std": float(residuals.std(ddof=1)) if residuals.size > 1 else 0.0,
        "p05": float(quantiles[0]),
        "p25": float(quantiles[1]),
        "median": float(quantiles[2]),
        "p75": float(quantiles[3]),
        "p95": float(quantiles[4]),
        "max_abs": float(np.abs(residuals).max()),
    }
