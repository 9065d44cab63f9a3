"""Linear models: logistic regression (classification) and ridge regression, on one-hot
categoricals and scaled, imputed numbers."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlwright.automl.families import align
from mlwright.automl.families._encode import DenseEncoder

NAME = "linear"
ITERATIVE = False


def fit(
    X: np.ndarray,
    y: np.ndarray,
    *,
    task: str,
    n_classes: int,
    categorical: list[int],
    params: dict[str, Any],
    seed: int,
    n_threads: int,
    deadline: float,
    X_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    n_iterations: int | None = None,
) -> tuple[Any, int]:
    """Fit the encoder and the linear model."""
    from sklearn.linear_model import LogisticRegression, Ridge

    encoder = DenseEncoder(categorical, int(params.get("max_categories", 64))).fit(X)
    Z = encoder.transform(X)
    if task == "regression":
        model = Ridge(alpha=float(params.get("alpha", 1.0)))
    else:
        model = LogisticRegression(C=float(params.get("C", 1.0)), max_iter=300, tol=1e-3)
    model.fit(Z, y)
    return (encoder, model, n_classes), 1


def predict(model: Any, X: np.ndarray, *, task: str, n_threads: int = 1) -> np.ndarray:
    """Class probabilities (n, k) for classification, values for regression."""
    encoder, estimator, n_classes = model
    Z = encoder.transform(X)
    # The linear algebra directly: scikit-learn's input validation costs more than the model
    # itself on a single row.
    scores = Z @ estimator.coef_.T + estimator.intercept_
    if task == "regression":
        return scores.ravel()
    if scores.shape[1] == 1:
        positive = 1.0 / (1.0 + np.exp(-scores[:, 0]))
        proba = np.column_stack([1 - positive, positive])
    else:
        scores = scores - scores.max(axis=1, keepdims=True)
        proba = np.exp(scores)
        proba /= proba.sum(axis=1, keepdims=True)
    return align(proba, estimator.classes_, n_classes)


def suggest(trial: Any, task: str, n_rows: int) -> dict[str, Any]:
    """Optuna search space."""
    if task == "regression":
        return {"alpha": trial.suggest_float("alpha", 1e-3, 1e3, log=True)}
    return {"C": trial.suggest_float("C", 1e-3, 1e3, log=True)}


def cost(
    iterations: int,
    params: dict[str, Any],
    n_outputs: int,
    n_rows: int,
    *,
    n_features: int = 0,
    n_categorical: int = 0,
):
    """Estimated prediction cost: (single-row milliseconds, batch microseconds per row)."""
    return 0.45, 1.5 + 0.1 * n_outputs
