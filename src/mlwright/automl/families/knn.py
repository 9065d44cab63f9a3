"""k-nearest neighbours on one-hot categoricals and scaled, imputed numbers."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from threadpoolctl import ThreadpoolController

from mlwright.automl.families import align
from mlwright.automl.families._encode import DenseEncoder

NAME = "knn"
ITERATIVE = False

#: scikit-learn's neighbour search runs its distance computations on OpenMP threads, one per
#: core, whatever ``n_jobs`` says. For one row that parallel region is pure overhead, and on a
#: busy machine its threads wait for each other: credit-g's k-NN predicted one row in 0.6-1.9 ms
#: p50 but 88-220 ms p99 at load 3.5 on two cores, against 5 ms p99 on one thread. The
#: controller is built once (``threadpool_limits`` inspects every loaded library on each call,
#: 5 ms there; a built controller's limit costs ~12 us).
_THREADS = ThreadpoolController()


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
    """Fit the encoder and index the training points."""
    encoder = DenseEncoder(categorical, 16).fit(X)
    Z = encoder.transform(X)
    k = int(min(params.get("n_neighbors", 10), max(1, len(Z) - 1)))
    weights = params.get("weights", "distance")
    if task == "regression":
        model = KNeighborsRegressor(n_neighbors=k, weights=weights, n_jobs=1)
    else:
        model = KNeighborsClassifier(n_neighbors=k, weights=weights, n_jobs=1)
    model.fit(Z, y)
    return (encoder, model, n_classes), 1


def predict(model: Any, X: np.ndarray, *, task: str, n_threads: int = 1) -> np.ndarray:
    """Class probabilities (n, k) for classification, values for regression."""
    encoder, estimator, n_classes = model
    threads = max(1, int(n_threads))
    estimator.n_jobs = threads
    try:
        Z = encoder.transform(X)
        with _THREADS.limit(limits=threads, user_api="openmp"):
            if task == "regression":
                return estimator.predict(Z)
            proba = estimator.predict_proba(Z)
    finally:
        estimator.n_jobs = 1
    # A training fold may miss a rare class: place columns by the classes the model saw.
    return align(proba, estimator.classes_, n_classes)


def suggest(trial: Any, task: str, n_rows: int) -> dict[str, Any]:
    """Optuna search space."""
    return {
        "n_neighbors": trial.suggest_int("n_neighbors", 3, 50, log=True),
        "weights": trial.suggest_categorical("weights", ["uniform", "distance"]),
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
    return 0.5 + 0.25 * n_rows / 1000, 5.0 * n_rows / 1000
