"""Correctness of the mSPRT by simulation with known truth (vectorised numpy).

The measured rates are printed (run with ``-s``) and asserted against alpha.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mlwright.experiment import (
    always_valid_p_values,
    confidence_sequence,
    sequential_test,
)

ALPHA = 0.05


def _peeked_proportions(rng, reps, looks, batch, p_a, p_b):
    n = batch * np.arange(1, looks + 1)
    rate_a = rng.binomial(batch, p_a, (reps, looks)).cumsum(axis=1) / n
    rate_b = rng.binomial(batch, p_b, (reps, looks)).cumsum(axis=1) / n
    difference = rate_b - rate_a
    variance = rate_a * (1 - rate_a) / n + rate_b * (1 - rate_b) / n
    pooled = (rate_a + rate_b) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        z = difference / np.sqrt(pooled * (1 - pooled) * 2 / n)
    fixed_p = 2 * stats.norm.sf(np.abs(np.nan_to_num(z)))
    return difference, variance, fixed_p


def _aa_rates(reps: int, looks: int, seed: int) -> tuple[float, float, float]:
    rng = np.random.default_rng(seed)
    difference, variance, fixed_p = _peeked_proportions(rng, reps, looks, 200, 0.1, 0.1)
    sequential_p = always_valid_p_values(difference, variance, tau=0.01)
    msprt_fpr = float((sequential_p[:, -1] < ALPHA).mean())
    peeked_fpr = float((fixed_p.min(axis=1) < ALPHA).mean())
    final_fpr = float((fixed_p[:, -1] < ALPHA).mean())
    return msprt_fpr, peeked_fpr, final_fpr


def test_aa_peeking_every_batch_msprt_holds_alpha_fixed_horizon_inflates() -> None:
    msprt_fpr, peeked_fpr, final_fpr = _aa_rates(reps=2000, looks=50, seed=11)
    # Standard error of a rate near 0.05 over 2,000 runs is 0.005.
    assert msprt_fpr <= ALPHA + 0.01
    assert peeked_fpr > 3 * ALPHA  # peeking a fixed-horizon test 50 times inflates it
    assert abs(final_fpr - ALPHA) < 0.015  # the fixed test read once is fine


@pytest.mark.slow
def test_aa_long_run_many_looks() -> None:
    msprt_fpr, peeked_fpr, _ = _aa_rates(reps=10_000, looks=200, seed=12)
    assert msprt_fpr <= ALPHA + 0.005
    assert peeked_fpr > 0.3


def test_ab_known_lift_is_detected_and_covered() -> None:
    rng = np.random.default_rng(21)
    reps, looks, lift = 2000, 50, 0.02
    difference, variance, _ = _peeked_proportions(rng, reps, looks, 200, 0.10, 0.10 + lift)
    p = always_valid_p_values(difference, variance, tau=0.01)
    lower, upper = confidence_sequence(difference, variance, tau=0.01, alpha=ALPHA)
    power = float((p[:, -1] < ALPHA).mean())
    # The confidence sequence must hold the truth at every look simultaneously.
    uniform_coverage = float(((lower <= lift) & (upper >= lift)).all(axis=1).mean())
    first = np.argmax(p < ALPHA, axis=1)[p[:, -1] < ALPHA]
    # Reading at every look pays off: the typical detection comes well before the horizon.
    assert np.median(first) < 0.75 * looks
    assert power > 0.9
    assert uniform_coverage >= 1 - ALPHA - 0.01
    decided = p[:, -1] < ALPHA
    assert (difference[decided, -1] > 0).all()  # no detection in the wrong direction


def test_sequential_test_on_a_stream_matches_the_vectorised_process() -> None:
    rng = np.random.default_rng(4)
    n = 6000
    arms = rng.random(n) < 0.5
    values = rng.normal(1.0, 2.0, n) + 0.3 * arms
    result = sequential_test(arms, values, tau=0.3, min_samples=50)
    assert result.significant
    assert result.lower <= 0.3 <= result.upper
    assert result.n_control + result.n_treatment == n
    assert result.looks > 5000
    null = sequential_test(arms, rng.normal(1.0, 2.0, n), tau=0.3)
    assert null.lower <= 0 <= null.upper
    early = sequential_test(arms[:20], values[:20])
    assert early.looks == 0
    assert early.p_value == 1.0


def test_stream_aa_false_positive_rate_with_default_tau() -> None:
    # Per-observation looks on a conversion stream, default (data-derived) tau.
    rng = np.random.default_rng(8)
    reps, n = 300, 4000
    rejections = sum(
        sequential_test(rng.random(n) < 0.5, (rng.random(n) < 0.2).astype(float)).significant
        for _ in range(reps)
    )
    assert rejections / reps <= ALPHA + 0.03
