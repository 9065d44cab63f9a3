"""Fixed-horizon tests, intervals, the planner and the SRM check against known truth."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mlwright.experiment import (
    ExperimentError,
    bootstrap_test,
    plan,
    power_at,
    proportion_test,
    srm_check,
    welch_test,
)


def test_proportion_test_matches_hand_computation() -> None:
    r = proportion_test(100, 1000, 140, 1000)
    pooled = 240 / 2000
    z = 0.04 / np.sqrt(pooled * (1 - pooled) * 2 / 1000)
    assert r.p_value == pytest.approx(2 * stats.norm.sf(z), rel=1e-9)
    half = 1.959964 * np.sqrt(0.1 * 0.9 / 1000 + 0.14 * 0.86 / 1000)
    assert r.lower == pytest.approx(0.04 - half, abs=1e-5)
    assert r.upper == pytest.approx(0.04 + half, abs=1e-5)
    assert r.significant
    assert r.relative_lift == pytest.approx(0.4)


def test_proportion_interval_covers_truth_at_nominal_rate() -> None:
    # 2,000 simulated A/B tests with a known lift of 0.02 on a 0.10 baseline.
    rng = np.random.default_rng(7)
    n, reps = 5000, 2000
    a = rng.binomial(n, 0.10, reps)
    b = rng.binomial(n, 0.12, reps)
    covered = detected = 0
    for sa, sb in zip(a, b, strict=True):
        r = proportion_test(int(sa), n, int(sb), n)
        covered += r.lower <= 0.02 <= r.upper
        detected += r.significant and r.difference > 0
    coverage, power = covered / reps, detected / reps
    # Binomial sampling error of a 95% rate over 2,000 runs is about 0.005.
    assert 0.935 <= coverage <= 0.965, coverage
    assert power == pytest.approx(power_at(0.10, 0.02, n), abs=0.04)


def test_welch_interval_coverage_with_unequal_variances() -> None:
    rng = np.random.default_rng(3)
    reps = 500
    covered = 0
    for _ in range(reps):
        r = welch_test(rng.normal(10, 1, 300), rng.normal(10.3, 3, 150))
        covered += r.lower <= 0.3 <= r.upper
    assert 0.925 <= covered / reps <= 0.975  # about two standard errors


def test_bootstrap_difference_of_medians() -> None:
    rng = np.random.default_rng(0)
    control = rng.exponential(1.0, 3000)
    treatment = rng.exponential(1.5, 3000)
    r = bootstrap_test(control, treatment, statistic="median", n_resamples=1000)
    true = 0.5 * np.log(2)
    assert r.lower <= true <= r.upper
    assert r.significant
    same = bootstrap_test(control, rng.exponential(1.0, 3000), statistic="p90", n_resamples=500)
    assert same.lower <= 0 <= same.upper
    via_callable = bootstrap_test(control, treatment, statistic=np.mean, n_resamples=300)
    assert via_callable.difference == pytest.approx(treatment.mean() - control.mean())


def test_plan_matches_textbook_and_simulated_power() -> None:
    p = plan(0.1, 0.01)
    # Cohen's h for 0.11 vs 0.10, z_{.975}+z_{.8} = 2.8016: n per arm = 2 (2.8016 / h)^2.
    h = 2 * np.arcsin(np.sqrt(0.11)) - 2 * np.arcsin(np.sqrt(0.10))
    assert p.n_control == pytest.approx(2 * (2.80158 / h) ** 2, abs=2)
    assert p.total == 2 * p.n_control
    assert power_at(0.1, 0.01, p.n_control) == pytest.approx(0.8, abs=0.002)
    rng = np.random.default_rng(5)
    a = rng.binomial(p.n_control, 0.10, 4000) / p.n_control
    b = rng.binomial(p.n_treatment, 0.11, 4000) / p.n_treatment
    pooled = (a + b) / 2
    z = (b - a) / np.sqrt(pooled * (1 - pooled) * 2 / p.n_control)
    assert (np.abs(z) > 1.96).mean() == pytest.approx(0.8, abs=0.025)
    relative = plan(0.1, 0.1, relative=True)
    assert relative.n_control == p.n_control
    means = plan(50.0, 1.0, std=10.0)
    assert means.metric == "mean"
    assert means.n_control == pytest.approx(1570, abs=2)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"baseline": 1.2, "mde": 0.01}, "baseline must lie in (0, 1)"),
        ({"baseline": 0.1, "mde": 0.0}, "must not be zero"),
        ({"baseline": 0.1, "mde": 0.01, "alpha": 1.5}, "alpha must lie"),
        ({"baseline": 0.1, "mde": 0.01, "power": 0}, "power must lie"),
    ],
)
def test_plan_rejects_bad_input(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ExperimentError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        plan(**kwargs)


def test_srm_flags_a_broken_split_and_passes_a_fair_one() -> None:
    assert not srm_check({"a": 10_000, "b": 10_100}, {"a": 0.5, "b": 0.5}).mismatch
    broken = srm_check({"a": 10_000, "b": 10_600}, {"a": 0.5, "b": 0.5})
    assert broken.mismatch
    assert broken.p_value < 1e-4
    assert srm_check({"a": 900, "b": 100, "c": 0}, {"a": 0.9, "b": 0.1, "c": 0}).p_value > 0.5
    assert srm_check({"a": 900, "b": 100, "c": 3}, {"a": 0.9, "b": 0.1, "c": 0}).mismatch


def test_bad_counts_and_too_few_values_raise() -> None:
    with pytest.raises(ExperimentError, match="successes out of"):
        proportion_test(5, 3, 1, 10)
    with pytest.raises(ExperimentError, match="at least 2 are needed"):
        welch_test([1.0], [1.0, 2.0])
