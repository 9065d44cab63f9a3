"""The second layer of the ensemble: stacking on the first layer's out-of-fold predictions.

A stacked model (Wolpert, 1992; the multi-layer stack ensembles of AutoGluon, Erickson et al.,
2020) sees each row's original features plus what a few first-layer models predicted for it.
It can learn where each of them is right (a k-NN near dense clusters, boosting elsewhere) and
combine their predictions with the features non-linearly, which a weighted average cannot.

Its training inputs must be predictions the first layer made without seeing the row: the
out-of-fold predictions, made with the same folds that the second layer is cross-validated on.
At prediction time the inputs come from the served first-layer members (refitted on all rows,
or the average of their fold models).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlwright.automl._ensemble import select_ensemble
from mlwright.automl._metrics import Metric

__all__ = ["MAX_INPUTS", "choose_inputs", "ensemble_library", "stack_columns"]

#: First-layer models whose predictions feed the second layer: each one must be served too.
MAX_INPUTS = 6
_EPS = 1e-6


def ensemble_library(results: Sequence, metric: Metric, top: int = 15) -> list:
    """Candidates for ensemble selection: the ``top`` best, plus the best of every family.

    After tuning, the best fifteen are often variants of one family (on credit-g, fifteen
    CatBoost trials), while a blend gains most from models that err differently: a linear model
    whose out-of-fold score ranks 30th can still earn weight.
    """
    ordered = sorted(results, key=lambda r: metric.loss(r.score))
    library = ordered[:top]
    for result in ordered[top:]:
        if all(r.candidate.family != result.candidate.family for r in library):
            library.append(result)
    return library


def choose_inputs(results: Sequence, y: np.ndarray, metric: Metric) -> list:
    """The first-layer models the second layer stacks on: those a free blend would use.

    Greedy ensemble selection without a cost limit picks models that complement each other;
    the most weighted :data:`MAX_INPUTS` of them are the inputs (ties by score), in a fixed
    order. Fewer than two inputs give no stack.
    """
    library = ensemble_library([r for r in results if r.layer == 1], metric)
    if len(library) < 2:
        return []
    weights, _ = select_ensemble([r.oof for r in library], y, metric, max_rounds=30)
    order = sorted(weights, key=lambda i: (-weights[i], metric.loss(library[i].score)))
    chosen = [library[i] for i in order[:MAX_INPUTS]]
    return chosen if len(chosen) >= 2 else []


def stack_columns(outputs: Sequence[np.ndarray], task: str) -> np.ndarray:
    """Stack features from the inputs' predictions, in input order.

    Binary: the log-odds of the positive class; multiclass: the log-probability of each
    class; regression: the predicted value. Logarithms keep the features informative for the
    linear second-layer model where probabilities crowd near 0 or 1 (trees are unaffected).
    """
    blocks = []
    for output in outputs:
        output = np.asarray(output, dtype=float)
        if task == "regression":
            blocks.append(output.reshape(-1, 1))
            continue
        proba = np.clip(output, _EPS, 1.0)
        proba = proba / proba.sum(axis=1, keepdims=True)
        if task == "binary":
            positive = np.clip(proba[:, 1], _EPS, 1 - _EPS)
            blocks.append(np.log(positive / (1 - positive)).reshape(-1, 1))
        else:
            blocks.append(np.log(proba))
    return np.hstack(blocks)
