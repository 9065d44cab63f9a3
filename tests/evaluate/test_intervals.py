"""Bootstrap intervals: deterministic, correct resampling, and nominal coverage."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from mlwright.errors import ConfigError
from mlwright.evaluate import bootstrap_interval
from mlwright.evaluate._intervals import counts_from_indices, resample_indices


def test_counts_match_the_index_matrix():
    indices = np.concatenate(list(resample_indices(50, 300, seed=4)))
    counts = counts_from_indices(indices)
    assert counts.shape == (300, 50)
    assert (counts.sum(axis=1) == 50).all()
    for row in (0, 17, 299):
        assert np.array_equal(counts[row], np.bincount(indices[row], minlength=50))


def test_same_seed_same_interval_and_callable_agrees():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = np.clip(0.4 * y + rng.uniform(0, 0.6, 300), 0, 1)
    first = bootstrap_interval("roc_auc", y, p, n_resamples=400, seed=3)
    again = bootstrap_interval("roc_auc", y, p, n_resamples=400, seed=3)
    assert first == again
    assert first.lower < first.value < first.upper
    # the slow path (any callable, same index matrix) gives the same resampled values
    slow = bootstrap_interval(roc_auc_score, y, p, n_resamples=400, seed=3)
    assert slow.value == pytest.approx(first.value)
    assert slow.lower == pytest.approx(first.lower)
    assert slow.upper == pytest.approx(first.upper)


def test_undefined_resamples_are_counted():
    y = np.array([0] * 28 + [1] * 2)
    p = np.linspace(0, 1, 30)
    interval = bootstrap_interval("roc_auc", y, p, n_resamples=500, seed=0)
    # about (28/30)^30 ~ 13% of resamples hold no positive row
    assert 20 < interval.n_undefined < 150
    assert interval.to_dict()["n_undefined"] == interval.n_undefined


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="at least 1"):
        bootstrap_interval("accuracy", [0, 1], [0.2, 0.7], n_resamples=0)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        bootstrap_interval("accuracy", [0, 1], [0.2, 0.7], confidence=95)


def _coverage(simulate, true_value, metric, n_seeds, n_resamples=500):
    hits = 0
    for seed in range(n_seeds):
        y, prediction = simulate(np.random.default_rng(10_000 + seed))
        interval = bootstrap_interval(metric, y, prediction, n_resamples=n_resamples, seed=seed)
        hits += interval.lower <= true_value <= interval.upper
    return hits / n_seeds


@pytest.mark.slow
def test_accuracy_interval_covers_the_truth_at_the_nominal_rate():
    # each row is right with probability 0.8: the true accuracy is 0.8
    def simulate(rng):
        y = rng.integers(0, 2, 400)
        correct = rng.random(400) < 0.8
        p = np.where(correct == (y == 1), 0.9, 0.1)
        return y, p

    coverage = _coverage(simulate, 0.8, "accuracy", n_seeds=300)
    # binomial sd of a 95% rate over 300 runs is ~1.3 points
    assert 0.91 <= coverage <= 0.985, coverage


@pytest.mark.slow
def test_roc_auc_interval_covers_the_truth_at_the_nominal_rate():
    # binormal scores with separation d have AUC = Phi(d / sqrt(2))
    separation = 1.0
    true_auc = float(norm.cdf(separation / np.sqrt(2)))

    def simulate(rng):
        y = rng.integers(0, 2, 500)
        score = rng.normal(separation * y, 1.0)
        return y, 1 / (1 + np.exp(-score))

    coverage = _coverage(simulate, true_auc, "roc_auc", n_seeds=300)
    assert 0.91 <= coverage <= 0.985, coverage


@pytest.mark.slow
def test_rmse_interval_covers_the_truth_at_the_nominal_rate():
    # errors are N(0, 2): the true RMSE is 2
    def simulate(rng):
        y = rng.normal(10, 3, 500)
        return y, y + rng.normal(0, 2, 500)

    coverage = _coverage(simulate, 2.0, "rmse", n_seeds=300)
    assert 0.91 <= coverage <= 0.985, coverage
