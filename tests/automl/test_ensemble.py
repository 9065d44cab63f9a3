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
