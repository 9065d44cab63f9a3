"""Extremely randomised trees (scikit-learn): categoricals as ordinal codes, missing values
native."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

from mlwright.automl.families import _forest, align

NAME = "extra_trees"
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
    """Grow up to ``n_estimators`` trees (fewer if the deadline comes first)."""
    settings = dict(params)
    n_trees = int(n_iterations or settings.pop("n_estimators", 300))
    settings.pop("n_estimators", None)
    estimator_class = ExtraTreesRegressor if task == "regression" else ExtraTreesClassifier
    estimator = estimator_class(n_jobs=n_threads, random_state=seed, **settings)
    grown = _forest.grow(estimator, X, y, n_trees, deadline)
    estimator.n_jobs = 1
    return (estimator, n_classes), grown


def predict(model: Any, X: np.ndarray, *, task: str, n_threads: int = 1) -> np.ndarray:
    """Class probabilities (n, k) for classification, values for regression."""
    estimator, n_classes = model
    output = _forest.predict(estimator, X, task, n_threads)
    return output if task == "regression" else align(output, estimator.classes_, n_classes)


def suggest(trial: Any, task: str, n_rows: int) -> dict[str, Any]:
    """Optuna search space."""
    return {
        "max_features": trial.suggest_float("max_features", 0.1, 1.0),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 10, log=True),
    }


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
    # Fully grown trees: depth grows with the log of the training rows.
    depth_factor = max(math.log2(max(n_rows, 2)) / 14, 0.5)
    return 0.12 * iterations, 0.27 * iterations * depth_factor
