"""Are the probabilities honest? Expected calibration error, reliability curves, recalibration.

For a binary model the curve compares the predicted probability of the positive class with how
often it happens; for a multiclass model the top-label confidence with how often the top label
is right (the usual definition of ECE). Recalibration fits a monotone map on held-out rows:
isotonic regression (flexible, wants a few hundred rows) or Platt's sigmoid (two parameters,
safe on small data); multiclass probabilities are calibrated one class against the rest and
renormalised, as scikit-learn's ``CalibratedClassifierCV`` does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize
from sklearn.isotonic import IsotonicRegression

from mlwright.errors import ConfigError, DataError
from mlwright.evaluate._metrics import EvalData, prepare

METHODS = ("isotonic", "sigmoid")
_CLIP = 1e-12


def _confidences(data: EvalData) -> tuple[np.ndarray, np.ndarray, str]:
    """(predicted probability, outcome 0/1, kind) for the reliability curve."""
    if data.proba is None:
        raise ConfigError("Calibration needs predicted probabilities, but only labels were given.")
    if data.task == "binary":
        column = data.positive_index
        return data.proba[:, column], (data.y_true == column).astype(float), "positive"
    top = np.argmax(data.proba, axis=1)
    return data.proba.max(axis=1), (top == data.y_true).astype(float), "top_label"


def _bin_edges(scores: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    if n_bins < 2:
        raise ConfigError(f"Use at least 2 bins for a reliability curve; got {n_bins}.")
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    if strategy == "quantile":
        return np.percentile(scores, np.linspace(0, 100, n_bins + 1))
    raise ConfigError(f"Unknown binning strategy {strategy!r}; use 'uniform' or 'quantile'.")


def reliability_curve(
    y_true,
    proba,
    *,
    classes=None,
    n_bins: int = 10,
    strategy: str = "uniform",
    task: str | None = None,
) -> dict[str, Any]:
    """Predicted probability against observed frequency, per bin.

    Parameters
    ----------
    y_true, proba, classes, task
        True labels and predicted probabilities (as for
        :func:`mlwright.evaluate.bootstrap_interval`).
    n_bins
        Number of bins.
    strategy
        ``"uniform"`` (equal-width bins, as scikit-learn's ``calibration_curve``) or
        ``"quantile"`` (equal-count bins).

    Returns
    -------
    dict
        ``kind`` (``"positive"`` or ``"top_label"``), and per non-empty bin:
        ``mean_predicted``, ``observed``, ``count``, ``lower``, ``upper``.
    """
    data = prepare(y_true, proba, task=task, classes=classes)
    scores, outcomes, kind = _confidences(data)
    edges = _bin_edges(scores, n_bins, strategy)
    bins = np.searchsorted(edges[1:-1], scores)
    count = np.bincount(bins, minlength=len(edges) - 1).astype(float)
    predicted_sum = np.bincount(bins, weights=scores, minlength=len(edges) - 1)
    observed_sum = np.bincount(bins, weights=outcomes, minlength=len(edges) - 1)
    filled = count > 0
    return {
        "kind": kind,
        "positive_label": data.positive_label,
        "mean_predicted": (predicted_sum[filled] / count[filled]).tolist(),
        "observed": (observed_sum[filled] / count[filled]).tolist(),
        "count": count[filled].astype(int).tolist(),
        "lower": edges[:-1][filled].tolist(),
        "upper": edges[1:][filled].tolist(),
    }


def expected_calibration_error(
    y_true,
    proba,
    *,
    classes=None,
    n_bins: int = 10,
    strategy: str = "uniform",
    task: str | None = None,
) -> float:
    """Expected calibration error: the count-weighted mean gap of the reliability curve.

    0 is perfectly calibrated; 0.05 means the stated probabilities are 5 points off on average.
    """
    curve = reliability_curve(
        y_true, proba, classes=classes, n_bins=n_bins, strategy=strategy, task=task
    )
    count = np.asarray(curve["count"], dtype=float)
    gap = np.abs(np.asarray(curve["observed"]) - np.asarray(curve["mean_predicted"]))
    return float((count * gap).sum() / count.sum())


class _Sigmoid:
    """Platt scaling on the logit of a probability: ``p' = sigmoid(a * logit(p) + b)``."""

    def fit(self, score: np.ndarray, outcome: np.ndarray) -> _Sigmoid:
        logit = _logit(score)

        def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
            z = params[0] * logit + params[1]
            p = 1.0 / (1.0 + np.exp(-z))
            p = np.clip(p, _CLIP, 1 - _CLIP)
            value = -np.mean(outcome * np.log(p) + (1 - outcome) * np.log(1 - p))
            residual = p - outcome
            return value, np.array([np.mean(residual * logit), np.mean(residual)])

        result = minimize(loss, x0=np.array([1.0, 0.0]), jac=True, method="BFGS")
        self.slope_, self.intercept_ = (float(v) for v in result.x)
        return self

    def transform(self, score: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.slope_ * _logit(score) + self.intercept_)))


def _logit(score: np.ndarray) -> np.ndarray:
    score = np.clip(np.asarray(score, dtype=float), _CLIP, 1 - _CLIP)
    return np.log(score / (1 - score))


class ProbabilityCalibrator:
    """A fitted map from a model's probabilities to calibrated probabilities.

    Parameters
    ----------
    method
        ``"isotonic"`` or ``"sigmoid"``.

    Attributes
    ----------
    maps_ : list
        One fitted one-dimensional map per calibrated column (one for binary).
    binary_ : bool
    n_rows_ : int
        Rows it was fitted on.
    """

    def __init__(self, method: str = "isotonic") -> None:
        self.method = method

    def fit(self, proba: np.ndarray, y_codes: np.ndarray) -> ProbabilityCalibrator:
        """Fit on held-out probabilities ``(n, k)`` and true class codes ``(n,)``."""
        if self.method not in METHODS:
            raise ConfigError(
                f"Unknown calibration method {self.method!r}; use 'isotonic' or 'sigmoid'."
            )
        proba = np.asarray(proba, dtype=float)
        y_codes = np.asarray(y_codes)
        self.binary_ = proba.shape[1] == 2
        columns = [1] if self.binary_ else list(range(proba.shape[1]))
        self.maps_ = []
        for column in columns:
            outcome = (y_codes == column).astype(float)
            if self.method == "isotonic":
                mapping = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
                mapping.fit(proba[:, column], outcome)
            else:
                mapping = _Sigmoid().fit(proba[:, column], outcome)
            self.maps_.append(mapping)
        self.n_rows_ = int(proba.shape[0])
        return self

    def transform(self, proba: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, rows summing to 1."""
        proba = np.asarray(proba, dtype=float)
        if self.binary_:
            positive = np.clip(self.maps_[0].transform(proba[:, 1]), 0.0, 1.0)
            return np.column_stack([1.0 - positive, positive])
        calibrated = np.column_stack(
            [mapping.transform(proba[:, k]) for k, mapping in enumerate(self.maps_)]
        )
        calibrated = np.clip(calibrated, 0.0, None)
        total = calibrated.sum(axis=1, keepdims=True)
        uniform = np.full_like(calibrated, 1.0 / calibrated.shape[1])
        return np.where(total > 0, calibrated / np.where(total > 0, total, 1.0), uniform)


def fit_calibrator(
    y_true, proba, *, method: str = "isotonic", classes=None, task: str | None = None
) -> ProbabilityCalibrator:
    """Fit isotonic or sigmoid calibration on held-out rows (not the training rows).

    Parameters
    ----------
    y_true, proba, classes, task
        True labels and the model's probabilities on held-out rows.
    method
        ``"isotonic"`` or ``"sigmoid"``.

    Returns
    -------
    ProbabilityCalibrator
    """
    data = prepare(y_true, proba, task=task, classes=classes)
    if data.proba is None or data.task == "regression":
        raise ConfigError("Calibration applies to classifiers with predicted probabilities.")
    present = np.unique(data.y_true)
    if present.size < 2:
        raise DataError(
            "Calibration needs held-out rows of at least two classes; the data holds only "
            f"'{data.classes[int(present[0])]}'."
        )
    if method == "isotonic" and data.n_rows < 100:
        raise DataError(
            f"Isotonic calibration needs at least 100 held-out rows to be reliable; got "
            f"{data.n_rows}. Use --calibrate sigmoid on small data."
        )
    return ProbabilityCalibrator(method).fit(data.proba, data.y_true)


class AdjustedPredictor:
    """A model's predictor with calibration and/or a decision threshold applied after it.

    This is what gets saved in the artifact when a model is calibrated or given a threshold:
    ``predict_proba`` returns calibrated probabilities and ``predict`` applies the threshold
    (binary) or the arg-max, so every consumer of the model (``predict``, serving) uses them.
    Other attributes (``classes_``, ``feature_names``, ...) are those of the wrapped predictor.

    Parameters
    ----------
    predictor
        The fitted predictor (``predict_proba`` and ``classes_``).
    calibrator
        A fitted :class:`ProbabilityCalibrator`, or ``None``.
    threshold
        Binary only: predict the positive class (``classes_[positive_index]``) when its
        probability is at least this; ``None`` keeps the arg-max.
    positive_index
        Position of the positive class in ``classes_``.
    """

    def __init__(
        self,
        predictor: Any,
        *,
        calibrator: ProbabilityCalibrator | None = None,
        threshold: float | None = None,
        positive_index: int = 1,
    ) -> None:
        if isinstance(predictor, AdjustedPredictor):
            calibrator = calibrator if calibrator is not None else predictor.calibrator
            predictor = predictor.predictor
        self.predictor = predictor
        self.calibrator = calibrator
        self.threshold = threshold
        self.positive_index = positive_index

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes not found normally; guard against recursion while
        # unpickling, when ``predictor`` is not set yet.
        if name == "predictor" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.predictor, name)

    def predict_proba(self, features: Any) -> np.ndarray:
        proba = np.asarray(self.predictor.predict_proba(features), dtype=float)
        if self.calibrator is not None:
            proba = self.calibrator.transform(proba)
        return proba

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """Class positions from probabilities: the threshold (binary) or the arg-max.

        Batch prediction and serving call this (when present) instead of their own arg-max,
        so a stored threshold applies everywhere the model predicts labels.
        """
        proba = np.asarray(proba, dtype=float)
        if self.threshold is not None and proba.shape[1] == 2:
            positive = proba[:, self.positive_index] >= self.threshold
            return np.where(positive, self.positive_index, 1 - self.positive_index)
        return np.argmax(proba, axis=1)

    def predict(self, features: Any) -> np.ndarray:
        classes = np.asarray(self.predictor.classes_)
        return classes[self.decide(self.predict_proba(features))]
