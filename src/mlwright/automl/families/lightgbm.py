"""LightGBM gradient boosting: native categoricals and missing values, early stopping."""

from __future__ import annotations

import math
import time
from typing import Any

import lightgbm
import numpy as np

NAME = "lightgbm"
ITERATIVE = True
_MAX_ROUNDS = 5000
_PATIENCE = 50


def _objective(task: str, n_classes: int) -> dict[str, Any]:
    if task == "binary":
        return {"objective": "binary"}
    if task == "multiclass":
        return {"objective": "multiclass", "num_class": n_classes}
    return {"objective": "regression"}


def _deadline_callback(deadline: float):
    def callback(env) -> None:
        if time.monotonic() > deadline:
            raise lightgbm.callback.EarlyStopException(env.iteration, env.evaluation_result_list)

    callback.order = 40
    return callback


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
    settings = {
        "learning_rate": 0.05,
        "num_leaves": 31,
        "verbosity": -1,
        "num_threads": n_threads,
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        **_objective(task, n_classes),
        **params,
    }
    if "bagging_fraction" in settings and settings["bagging_fraction"] < 1:
        settings.setdefault("bagging_freq", 1)
    rounds = int(settings.pop("n_estimators", _MAX_ROUNDS))
    train = lightgbm.Dataset(
        X, label=y, categorical_feature=categorical or "auto", free_raw_data=False
    )
    callbacks = [_deadline_callback(deadline)]
    if X_val is not None and n_iterations is None:
        valid = lightgbm.Dataset(X_val, label=y_val, reference=train)
        callbacks.append(lightgbm.early_stopping(_PATIENCE, verbose=False))
        booster = lightgbm.train(settings, train, rounds, valid_sets=[valid], callbacks=callbacks)
        best = booster.best_iteration or booster.current_iteration()
    else:
        booster = lightgbm.train(settings, train, n_iterations or rounds, callbacks=callbacks)
        best = booster.current_iteration()
    if best < booster.current_iteration():
        booster = lightgbm.Booster(model_str=booster.model_to_string(num_iteration=best))
    else:
        booster.free_dataset()
    return booster, int(best)


def predict(model: Any, X: np.ndarray, *, task: str, n_threads: int = 1) -> np.ndarray:
    """Class probabilities (n, k) for classification, values for regression."""
    output = model.predict(X, num_threads=n_threads)
    if task == "binary":
        return np.column_stack([1 - output, output])
    return output


def suggest(trial: Any, task: str, n_rows: int) -> dict[str, Any]:
    """Optuna search space."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 256, log=True),
        "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 2, 100, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.3, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
        "lambda_l1": trial.suggest_float("lambda_l1", 1e-8, 10.0, log=True),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-8, 10.0, log=True),
        "extra_trees": trial.suggest_categorical("extra_trees", [False, True]),
        "cat_smooth": trial.suggest_float("cat_smooth", 1.0, 50.0, log=True),
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
    depth = math.log2(max(params.get("num_leaves", 31), 2)) + 1
    return 0.15 + 0.0003 * trees, 0.5 + 0.08 * trees * depth / 6
