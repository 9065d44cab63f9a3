"""Shared time-boxed growth of scikit-learn forests (used by random_forest and extra_trees)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np


def grow(estimator: Any, X: np.ndarray, y: np.ndarray, n_trees: int, deadline: float) -> int:
    """Add trees in chunks (warm start) until ``n_trees`` or the deadline; return the count."""
    chunk = max(8, n_trees // 8)
    grown = 0
    while grown < n_trees:
        grown = min(n_trees, grown + chunk)
        estimator.set_params(n_estimators=grown, warm_start=True)
        estimator.fit(X, y)
        if time.monotonic() > deadline:
            break
    return grown


def predict(estimator: Any, X: np.ndarray, task: str, n_threads: int) -> np.ndarray:
    estimator.n_jobs = n_threads
    try:
        if task == "regression":
            return estimator.predict(X)
        return estimator.predict_proba(X)
    finally:
        estimator.n_jobs = 1
