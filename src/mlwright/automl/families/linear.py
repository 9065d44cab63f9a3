"""Linear models: logistic regression (classification) and ridge regression, on one-hot
categoricals and scaled, imputed numbers."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge, RidgeCV
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from mlwright.automl.families import align
from mlwright.automl.families._encode import DenseEncoder

NAME = "linear"
ITERATIVE = False
#: Largest rows x encoded columns x outputs whose logistic regression chooses C by inner
#: cross-validation (credit-g: 45,000; segment: 230,000, 2 s for five folds).
_AUTO_SIZE = 500_000


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
    """Fit the encoder and the linear model.

    ``C`` (classification) or ``alpha`` (regression) set to ``"auto"`` chooses the
    regularisation by an inner cross-validation on the rows given: ridge by its efficient
    leave-one-out path on any data, logistic regression by 3 folds over 11 values of C while
    rows x encoded columns x outputs stay within :data:`_AUTO_SIZE` (beyond, C = 1: the path
    costs 33 fits, 17 s of a 60 s budget on optdigits, and larger data needs less
    regularisation).
    """
    encoder = DenseEncoder(categorical, int(params.get("max_categories", 64))).fit(X)
    Z = encoder.transform(X)
    # The solvers run on BLAS, which starts a thread per core inside every fit; fits run two at
    # a time, so each keeps to its ``n_threads``. With two searches on two cores the spinning,
    # oversubscribed BLAS threads made a 1 s cross-validation take 19 s. (Set here, after the
    # scikit-learn import has loaded SciPy's BLAS, so that the limit reaches it.)
    with threadpool_limits(limits=max(1, int(n_threads)), user_api="blas"):
        if task == "regression":
            alpha = params.get("alpha", 1.0)
            if alpha == "auto":
                model = RidgeCV(alphas=np.logspace(-3, 3, 13))
            else:
                model = Ridge(alpha=float(alpha))
        else:
            C = params.get("C", 1.0)
            if C == "auto":
                outputs = n_classes if n_classes > 2 else 1
                small = len(y) * Z.shape[1] * outputs <= _AUTO_SIZE
                C = _best_C(Z, y, seed) if small and np.bincount(y).min() >= 3 else 1.0
            model = LogisticRegression(C=float(C), max_iter=300, tol=1e-3)
        model.fit(Z, y)
    return (encoder, model, n_classes), 1


def _best_C(Z: np.ndarray, y: np.ndarray, seed: int) -> float:
    """The C of 11 (1e-3 to 1e2) with the lowest log loss over 3 stratified inner folds."""
    grid = np.logspace(-3, 2, 11)
    losses = np.zeros(len(grid))
    labels = np.unique(y)
    for train, valid in StratifiedKFold(3, shuffle=True, random_state=seed).split(Z, y):
        for index, C in enumerate(grid):
            model = LogisticRegression(C=C, max_iter=300, tol=1e-3).fit(Z[train], y[train])
            losses[index] += log_loss(y[valid], model.predict_proba(Z[valid]), labels=labels)
    return float(grid[int(np.argmin(losses))])


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
