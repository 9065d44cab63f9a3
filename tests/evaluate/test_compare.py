"""The paired comparison finds real differences, none between a model and itself, and keeps
its false-positive rate near alpha on two equally good models."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest
from statsmodels.stats.contingency_tables import mcnemar

from mlwright.errors import ConfigError, DataError
from mlwright.evaluate import compare_predictions, mcnemar_test


def _scores(rng, y, separation):
    return 1 / (1 + np.exp(-rng.normal(separation * (2 * y - 1), 1.0)))


def test_finds_a_real_difference_in_both_directions():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 1500)
    weak = _scores(rng, y, 0.4)
    strong = _scores(rng, y, 1.0)
    better = compare_predictions(y, weak, strong, metric="roc_auc", n_resamples=500)
    assert better.verdict == "better"
    assert better.b_is_better
    assert better.difference.lower > 0
    assert better.p_value < 0.01
    assert "better" in better.summary()
    worse = compare_predictions(y, strong, weak, metric="log_loss", n_resamples=500)
    assert worse.verdict == "worse"
    assert not worse.greater_is_better
    # log loss: smaller is better, so B (weak) has the larger value
    assert worse.difference.value > 0
    assert worse.mcnemar["only_a_correct"] > worse.mcnemar["only_b_correct"]


def test_a_model_against_itself_is_not_distinguishable():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    p = _scores(rng, y, 0.7)
    result = compare_predictions(y, p, p, metric="accuracy", n_resamples=300)
    assert result.verdict == "not distinguishable"
    assert result.p_value == 1.0
    assert result.difference.value == 0.0
    assert result.mcnemar["p_value"] == 1.0
    assert result.to_dict()["verdict"] == "not distinguishable"


def test_regression_comparison_has_no_mcnemar():
    rng = np.random.default_rng(2)
    y = rng.normal(0, 5, 800)
    rough = y + rng.normal(0, 3, 800)
    fine = y + rng.normal(0, 2, 800)
    result = compare_predictions(y, rough, fine, task="regression", n_resamples=400)
    assert result.metric == "rmse"
    assert result.verdict == "better"
    assert result.mcnemar is None


def test_false_positive_rate_stays_near_alpha():
    # two independent models, each right on a row with probability 0.75: equally good
    rejections = mcnemar_rejections = 0
    runs = 200
    for seed in range(runs):
        rng = np.random.default_rng(50_000 + seed)
        y = rng.integers(0, 2, 400)
        p_a = np.where((rng.random(400) < 0.75) == (y == 1), 0.8, 0.2)
        p_b = np.where((rng.random(400) < 0.75) == (y == 1), 0.8, 0.2)
        result = compare_predictions(y, p_a, p_b, metric="accuracy", n_resamples=400, seed=seed)
        rejections += result.verdict != "not distinguishable"
        mcnemar_rejections += result.mcnemar["p_value"] < 0.05
    # nominal 5%; the sd of a rate over 200 runs is ~1.5 points
    assert 0.01 <= rejections / runs <= 0.10, rejections
    assert mcnemar_rejections / runs <= 0.10, mcnemar_rejections


def test_mcnemar_matches_statsmodels_and_the_exact_binomial():
    correct_a = np.array([True] * 10 + [False] * 2 + [True] * 30 + [False] * 8)
    correct_b = np.array([False] * 10 + [True] * 2 + [True] * 30 + [False] * 8)
    result = mcnemar_test(correct_a, correct_b)
    assert result["exact"]
    assert result["only_a_correct"] == 10
    assert result["only_b_correct"] == 2
    assert result["p_value"] == pytest.approx(binomtest(2, 12, 0.5).pvalue)
    assert result["p_value"] == pytest.approx(2 * (1 + 12 + 66) / 4096)
    rng = np.random.default_rng(3)
    a = rng.random(2000) < 0.8
    b = rng.random(2000) < 0.76
    large = mcnemar_test(a, b)
    table = [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]]
    expected = mcnemar(table, exact=False, correction=True)
    assert not large["exact"]
    assert large["statistic"] == pytest.approx(expected.statistic)
    assert large["p_value"] == pytest.approx(expected.pvalue)


def test_bad_inputs():
    with pytest.raises(ConfigError, match="alpha"):
        compare_predictions([0, 1], [0.1, 0.9], [0.2, 0.8], alpha=5)
    with pytest.raises(DataError, match="rows"):
        compare_predictions([0, 1, 1], [0.1, 0.9, 0.2], [0.2, 0.8])
