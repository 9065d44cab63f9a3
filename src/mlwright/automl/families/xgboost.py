"""XGBoost (hist): native categoricals and missing values, early stopping."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import xgboost

NAME = "xgboost"
ITERATIVE = True
_MAX_ROUNDS = 5000
_PATIENCE = 50


def _objective(task: str, n_classes: int) -> dict[str, Any]:
    if task == "binary":
        return {"objective": "binary:logistic", "eval_metric": "logloss"}
    if task == "multiclass":
        return {"objective": "multi:softprob", "num_class": n_classes, "eval_metric": "mlogloss"}
    return {"objective": "reg:squarederror", "eval_metric": "rmse"}


def _matrix(X, y, categorical):
    types = ["c" if i in set(categorical) else "q" for i in range(X.shape[1])]
    return xgboost.DMatrix(X, label=y, feature_types=types, enable_categorical=True, nthread=1)


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
    """Fit a booster; with validation data it early-stops, else runs ``n_iterations``."""

    class _Deadline(xgboost.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log) -> bool:
            return time.monotonic() > deadline

    settings = {
        "tree_method": "hist",
        "learning_rate": 0.05,
        "max_depth": 6,
        "nthread": n_threads,
        "seed": seed,
        "max_cat_to_onehot": 8,
        "verbosity": 0,
        **_objective(task, n_classes),
        **params,
    }
    rounds = int(settings.pop("n_estimators", _MAX_ROUNDS))
    train = _matrix(X, y, categorical)
    if X_val is not None and n_iterations is None:
        valid = _matrix(X_val, y_val, categorical)
        booster = xgboost.train(
            settings,
            train,
            rounds,
            evals=[(valid, "valid")],
            early_stopping_rounds=_PATIENCE,
            callbacks=[_Deadline()],
            verbose_eval=False,
        )
        best = int(getattr(booster, "best_iteration", booster.num_boosted_rounds() - 1)) + 1
        if best < booster.num_boosted_rounds():
            booster = booster[:best]
    else:
        booster = xgboost.train(
            settings, train, n_iterations or rounds, callbacks=[_Deadline()], verbose_eval=False
        )
        best = booster.num_boosted_rounds()
    booster.set_param({"nthread": 1})
    return booster, int(best)


def predict(model: Any, X: np.ndarray, *, task: str, n_threads: int = 1) -> np.ndarray:
    """Class probabilities (n, k) for classification, values for regression."""
    if n_threads != 1:
        model.set_param({"nthread": n_threads})
    output = model.inplace_predict(X)
    if n_threads != 1:
        model.set_param({"nthread": 1})
    if task == "binary":
        return np.column_stack([1 - output, output])
    return output


def suggest(trial: Any, task: str, n_rows: int) -> dict[str, Any]:
    """Optuna search space."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 10),
        "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 20, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
        "reg_alpha": trial.suggest_float("reg_alpha", 1e-8, 1.0, log=True),
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
    # A categorical split tests a category bitset, not one threshold: on adult (8 of 14
    # features categorical) a tree costs 2.4 times what it costs on numbers alone
    # (benchmarks/prediction_cost.py).
    categorical = 1.0 + 2.4 * n_categorical / max(n_features, 1)
    per_tree = 0.02 * params.get("max_depth", 6) / 6 * categorical
    return 0.5 + 0.0003 * trees, 1.0 + per_tree * trees
