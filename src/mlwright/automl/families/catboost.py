"""CatBoost: ordered target statistics for categoricals, symmetric trees, early stopping."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pandas as pd
from catboost import CatBoostClassifier, CatBoostRegressor, Pool

from mlwright.automl.families import align

NAME = "catboost"
ITERATIVE = True
_MAX_ROUNDS = 5000
_PATIENCE = 50
_SMALL_BATCH = 256


def _frame(X: np.ndarray, categorical: list[int]):
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    for i in categorical:
        # CatBoost needs integer or string categories: missing becomes its own code.
        column = X[:, i]
        frame[f"f{i}"] = np.where(np.isnan(column), -1, column).astype(np.int64)
    return frame


def _objects(X: np.ndarray, categorical: list[int]) -> np.ndarray:
    # Small batches: an object array skips the DataFrame construction that dominates
    # single-row latency (categories become the same integers as in training).
    rows = X.astype(object)
    if categorical:
        codes = X[:, categorical]
        rows[:, categorical] = np.where(np.isnan(codes), -1, codes).astype(np.int64)
    return rows


def _pool(X, y, categorical):
    return Pool(_frame(X, categorical), label=y, cat_features=list(categorical) or None)


class _Deadline:
    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def after_iteration(self, info) -> bool:
        return time.monotonic() < self.deadline


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
    """Fit a model; with validation data it early-stops, else runs ``n_iterations``."""
    settings = {
        "learning_rate": 0.08,
        "depth": 6,
        "iterations": _MAX_ROUNDS,
        "random_seed": seed,
        "thread_count": n_threads,
        "verbose": False,
        "allow_writing_files": False,
        # Categories with few levels are one-hot split rather than turned into target
        # statistics: on car (four classes, six features of 3-4 levels) that fits 20 times
        # faster and converges where the statistics did not within a minute.
        "one_hot_max_size": 10,
        **params,
    }
    if task == "multiclass":
        settings["loss_function"] = "MultiClass"
    elif task == "binary":
        settings["loss_function"] = "Logloss"
    else:
        settings["loss_function"] = "RMSE"
    estimator_class = CatBoostRegressor if task == "regression" else CatBoostClassifier
    train = _pool(X, y, categorical)
    if X_val is not None and n_iterations is None:
        model = estimator_class(**settings, od_type="Iter", od_wait=_PATIENCE, use_best_model=True)
        model.fit(train, eval_set=_pool(X_val, y_val, categorical), callbacks=[_Deadline(deadline)])
        best = model.get_best_iteration()
        best = model.tree_count_ if best is None else best + 1
    else:
        settings["iterations"] = int(n_iterations or settings["iterations"])
        model = estimator_class(**settings)
        model.fit(train, callbacks=[_Deadline(deadline)])
        best = model.tree_count_
    return (model, list(categorical), n_classes), int(best)


def predict(model: Any, X: np.ndarray, *, task: str, n_threads: int = 1) -> np.ndarray:
    """Class probabilities (n, k) for classification, values for regression."""
    estimator, categorical, n_classes = model
    frame = _frame(X, categorical) if len(X) > _SMALL_BATCH else _objects(X, categorical)
    if task == "regression":
        return estimator.predict(frame, thread_count=n_threads)
    proba = estimator.predict_proba(frame, thread_count=n_threads)
    return align(proba, estimator.classes_, n_classes)


def suggest(trial: Any, task: str, n_rows: int) -> dict[str, Any]:
    """Optuna search space."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
        "depth": trial.suggest_int("depth", 4, 8),
        "l2_leaf_reg": trial.suggest_float("l2_leaf_reg", 1.0, 20.0, log=True),
        "random_strength": trial.suggest_float("random_strength", 0.1, 5.0, log=True),
        "bagging_temperature": trial.suggest_float("bagging_temperature", 0.0, 1.0),
        "one_hot_max_size": trial.suggest_categorical("one_hot_max_size", [2, 10]),
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
    trees = iterations * n_outputs
    depth = params.get("depth", 6)
    # Oblivious trees are cheap to evaluate; what costs is preparing the row: binarising each
    # numeric feature and turning each categorical value into its target statistics (one set
    # per class), about 0.04 and 0.35 us per feature and row (benchmarks/prediction_cost.py).
    numeric = max(n_features - n_categorical, 0)
    features = 0.04 * numeric + 0.35 * n_categorical * math.sqrt(max(n_outputs, 1))
    return 0.4 + 0.0005 * trees, 0.3 + features + 0.002 * trees * 2 ** (depth - 6)
