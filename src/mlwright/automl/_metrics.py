"""Metrics by task, scored the way the benchmark protocol scores them.

Classification metrics work on class indices into ``classes`` (the training labels sorted by
their string form, so that for a binary task the positive class is index 1) and on predicted
probabilities; label metrics (accuracy, F1, ...) take the arg-max of the probabilities.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import rankdata

from mlwright.errors import ConfigError

__all__ = ["Metric", "default_metric", "get_metric", "metric_names", "sort_labels"]

_EPS = 1e-15

TASKS = ("binary", "multiclass", "regression")


def sort_labels(labels: Sequence[Any]) -> list[Any]:
    """Distinct labels sorted by their string form (the suite's positive-class rule)."""
    distinct = list(dict.fromkeys(label for label in labels))
    return sorted(distinct, key=lambda label: str(label))


def _clip_normalise(proba: np.ndarray) -> np.ndarray:
    proba = np.clip(np.asarray(proba, dtype=float), _EPS, 1 - _EPS)
    return proba / proba.sum(axis=1, keepdims=True)


def _log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    proba = _clip_normalise(proba)
    return float(-np.mean(np.log(proba[np.arange(len(y)), y])))


def _binary_auc(y: np.ndarray, score: np.ndarray) -> float:
    positives = y == 1
    n_pos = int(positives.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _roc_auc(y: np.ndarray, proba: np.ndarray) -> float:
    if proba.shape[1] == 2:
        return _binary_auc(y, proba[:, 1])
    # One-vs-rest macro average over the classes present, as scikit-learn's multi_class="ovr".
    scores = [
        _binary_auc((y == k).astype(int), proba[:, k])
        for k in range(proba.shape[1])
        if 0 < (y == k).sum() < len(y)
    ]
    return float(np.mean(scores)) if scores else float("nan")


def _confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    return np.bincount(y * n_classes + pred, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )


def _per_class(y, pred, n_classes):
    matrix = _confusion(y, pred, n_classes).astype(float)
    true_pos = np.diag(matrix)
    predicted = matrix.sum(axis=0)
    actual = matrix.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, true_pos / predicted, 0.0)
        recall = np.where(actual > 0, true_pos / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return precision, recall, f1, actual


def _pick(values: np.ndarray, n_classes: int, present: np.ndarray) -> float:
    # Binary: the positive class (index 1); multiclass: macro average over classes seen.
    if n_classes == 2:
        return float(values[1])
    mask = present > 0
    return float(values[mask].mean()) if mask.any() else 0.0


def _accuracy(y, pred, n_classes):
    return float(np.mean(y == pred))


def _balanced_accuracy(y, pred, n_classes):
    _, recall, _, actual = _per_class(y, pred, n_classes)
    return float(recall[actual > 0].mean())


def _f1(y, pred, n_classes):
    _, _, f1, actual = _per_class(y, pred, n_classes)
    return _pick(f1, n_classes, actual)


def _precision(y, pred, n_classes):
    precision, _, _, actual = _per_class(y, pred, n_classes)
    return _pick(precision, n_classes, actual)


def _recall(y, pred, n_classes):
    _, recall, _, actual = _per_class(y, pred, n_classes)
    return _pick(recall, n_classes, actual)


def _mcc(y, pred, n_classes):
    matrix = _confusion(y, pred, n_classes).astype(float)
    t = matrix.sum(axis=1)
    p = matrix.sum(axis=0)
    c = np.trace(matrix)
    s = matrix.sum()
    denominator = np.sqrt((s * s - p @ p) * (s * s - t @ t))
    return float((c * s - t @ p) / denominator) if denominator > 0 else 0.0


def _rmse(y, pred):
    return float(np.sqrt(np.mean((np.asarray(y, float) - np.asarray(pred, float)) ** 2)))


def _mae(y, pred):
    return float(np.mean(np.abs(np.asarray(y, float) - np.asarray(pred, float))))


def _r2(y, pred):
    y = np.asarray(y, float)
    total = np.sum((y - y.mean()) ** 2)
    residual = np.sum((y - np.asarray(pred, float)) ** 2)
    return float(1 - residual / total) if total > 0 else 0.0


def _mape(y, pred):
    # scikit-learn's definition: a tiny epsilon keeps zero targets finite.
    y = np.asarray(y, float)
    denominator = np.maximum(np.abs(y), np.finfo(float).eps)
    return float(np.mean(np.abs(y - np.asarray(pred, float)) / denominator))


_PROBA: dict[str, tuple[Callable, bool]] = {
    "roc_auc": (_roc_auc, True),
    "log_loss": (_log_loss, False),
}
_LABEL: dict[str, tuple[Callable, bool]] = {
    "accuracy": (_accuracy, True),
    "balanced_accuracy": (_balanced_accuracy, True),
    "f1": (_f1, True),
    "precision": (_precision, True),
    "recall": (_recall, True),
    "mcc": (_mcc, True),
}
_REGRESSION: dict[str, tuple[Callable, bool]] = {
    "rmse": (_rmse, False),
    "mae": (_mae, False),
    "r2": (_r2, True),
    "mape": (_mape, False),
}
_ALIASES = {
    "auc": "roc_auc",
    "logloss": "log_loss",
    "neg_log_loss": "log_loss",
    "mse_root": "rmse",
    "root_mean_squared_error": "rmse",
    "mean_absolute_error": "mae",
    "f1_macro": "f1",
    "matthews_corrcoef": "mcc",
}


@dataclass(frozen=True)
class Metric:
    """A scoring rule for one task.

    Attributes
    ----------
    name
        Canonical metric name (``"roc_auc"``, ``"log_loss"``, ``"rmse"``, ...).
    task
        ``"binary"``, ``"multiclass"`` or ``"regression"``.
    greater_is_better
        Whether a larger score is better.
    needs_proba
        Whether the metric scores probabilities rather than hard labels.
    """

    name: str
    task: str
    greater_is_better: bool
    needs_proba: bool
    _function: Callable = field(repr=False, compare=False, default=None)

    def score(self, y_true: Any, y_pred: Any, classes: Sequence[Any] | None = None) -> float:
        """Score predictions against true values.

        Parameters
        ----------
        y_true
            True labels (original label values) or regression targets.
        y_pred
            Regression: predicted values. Classification: an (n, n_classes) array of
            probabilities with columns in ``classes`` order, or 1-D predicted labels (only
            for label metrics).
        classes
            Classification: the class labels in column order. Defaults to the distinct labels
            of ``y_true`` sorted by their string form.

        Returns
        -------
        float
        """
        if self.task == "regression":
            return self._function(np.asarray(y_true, float), np.asarray(y_pred, float))
        y_values = list(np.asarray(y_true, dtype=object))
        classes = sort_labels(y_values) if classes is None else list(classes)
        index = {label: i for i, label in enumerate(classes)}
        index_by_text = {str(label): i for i, label in enumerate(classes)}
        try:
            y_index = np.array(
                [index[v] if v in index else index_by_text[str(v)] for v in y_values], dtype=int
            )
        except KeyError as err:
            raise ConfigError(
                f"Metric {self.name}: true label {err.args[0]!r} is not one of the classes "
                f"{classes!r}. Pass the classes the predictions refer to."
            ) from err
        prediction = np.asarray(y_pred)
        if prediction.ndim == 1:
            if self.needs_proba:
                raise ConfigError(
                    f"Metric {self.name} scores probabilities: pass an (n, n_classes) array "
                    "of predicted probabilities, not labels."
                )
            pred_index = np.array(
                [index[v] if v in index else index_by_text[str(v)] for v in prediction], dtype=int
            )
            return self._function(y_index, pred_index, len(classes))
        return self.score_encoded(y_index, prediction)

    def score_encoded(self, y: np.ndarray, prediction: np.ndarray) -> float:
        """Score with class indices and a probability matrix (the search's fast path)."""
        if self.task == "regression":
            return self._function(y, prediction)
        if self.needs_proba:
            return self._function(y, prediction)
        return self._function(y, np.asarray(prediction).argmax(axis=1), prediction.shape[1])

    def better(self, a: float, b: float) -> bool:
        """Whether score ``a`` is strictly better than ``b`` (NaN is never better)."""
        if np.isnan(a):
            return False
        if np.isnan(b):
            return True
        return a > b if self.greater_is_better else a < b

    def loss(self, value: float) -> float:
        """The score as a quantity to minimise (NaN maps to +inf)."""
        if value is None or np.isnan(value):
            return float("inf")
        return -value if self.greater_is_better else value


def metric_names(task: str) -> list[str]:
    """Metric names available for a task."""
    if task == "regression":
        return list(_REGRESSION)
    return [*_PROBA, *_LABEL]


def get_metric(name: str, task: str) -> Metric:
    """The metric called ``name`` for ``task``.

    Parameters
    ----------
    name
        A metric name such as ``"roc_auc"``, ``"log_loss"``, ``"f1"``, ``"rmse"``, ``"mae"``.
    task
        ``"binary"``, ``"multiclass"`` or ``"regression"``.

    Returns
    -------
    Metric

    Raises
    ------
    ConfigError
        If the task or the metric is unknown, or the metric does not fit the task.
    """
    if task not in TASKS:
        raise ConfigError(f"Unknown task {task!r}; expected one of {', '.join(TASKS)}.")
    key = _ALIASES.get(str(name).strip().lower(), str(name).strip().lower())
    table = _REGRESSION if task == "regression" else {**_PROBA, **_LABEL}
    if key not in table:
        raise ConfigError(
            f"Metric {name!r} does not apply to a {task} task; use one of "
            f"{', '.join(metric_names(task))}."
        )
    function, greater = table[key]
    return Metric(key, task, greater, key in _PROBA, function)


def default_metric(task: str) -> Metric:
    """The default metric: ROC AUC (binary), log loss (multiclass), RMSE (regression)."""
    names = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
    if task not in names:
        raise ConfigError(f"Unknown task {task!r}; expected one of {', '.join(TASKS)}.")
    return get_metric(names[task], task)
