"""Greedy ensemble selection improves on the best single model when models err differently."""

from __future__ import annotations

import numpy as np

from mlwright.automl import get_metric
from mlwright.automl._ensemble import select_ensemble


def test_blend_of_complementary_models_beats_best_single():
    rng = np.random.default_rng(0)
    y = rng.normal(size=2000)
    # Two models with independent errors: their average has half the error variance.
    a = y + rng.normal(scale=1.0, size=y.size)
    b = y + rng.normal(scale=1.0, size=y.size)
    bad = y + rng.normal(scale=3.0, size=y.size)
    metric = get_metric("rmse", "regression")
    weights, score = select_ensemble([a, b, bad], y, metric)
    best_single = min(metric.score_encoded(y, p) for p in (a, b, bad))
    assert score < best_single * 0.8
    assert set(weights) >= {0, 1}
    assert abs(sum(weights.values()) - 1) < 1e-9


def test_cost_budget_limits_members():
    rng = np.random.default_rng(1)
    y = rng.normal(size=500)
    predictions = [y + rng.normal(size=y.size) for _ in range(4)]
    metric = get_metric("rmse", "regression")
    weights, _ = select_ensemble(predictions, y, metric, costs=[(1.0, 1.0)] * 4, budget=(2.0, 2.0))
    assert len(weights) <= 2


def test_paired_fold_losses_keep_a_consistently_better_costly_model():
    """A cheap model worse on every fold is not 'within noise' of the best, however large the
    spread between folds: the comparison is paired."""
    rng = np.random.default_rng(2)
    y = rng.normal(size=1000)
    accurate = y + rng.normal(scale=0.5, size=y.size)
    cheap = y + rng.normal(scale=0.6, size=y.size)
    metric = get_metric("rmse", "regression")
    # Folds differ a lot (0.4 to 0.8) but the cheap model is 0.05 worse on each one.
    folds_accurate = [0.4, 0.5, 0.6, 0.7, 0.8]
    folds_cheap = [value + 0.05 for value in folds_accurate]
    costs = [(1.0, 30.0), (1.0, 5.0)]
    unpaired, _ = select_ensemble(
        [accurate, cheap], y, metric, costs=costs, budget=(2.5, 12.0), tolerance=0.2
    )
    paired, _ = select_ensemble(
        [accurate, cheap],
        y,
        metric,
        costs=costs,
        budget=(2.5, 12.0),
        tolerance=0.2,
        fold_losses=[folds_accurate, folds_cheap],
    )
    assert unpaired == {1: 1.0}  # the unpaired spread calls the cheap model as good
    assert 0 in paired
    assert paired[0] > 0.5
