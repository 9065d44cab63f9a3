"""Fixed-horizon statistics of an A/B test: the tests, their intervals, power and SRM.

The tests come from statsmodels and scipy (two-proportion z-test, Welch's t-test, power
analysis, chi-square goodness of fit); only the glue lives here. Every difference is
``treatment - control`` so a positive value means the treatment arm is higher.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mlwright.experiment._errors import ExperimentError


@dataclass(frozen=True)
class TestResult:
    """A comparison of one metric between a control and a treatment arm.

    Attributes
    ----------
    method
        ``"two_proportion_z"``, ``"welch_t"`` or ``"bootstrap"``.
    control, treatment
        The metric's estimate in each arm.
    n_control, n_treatment
        Observations in each arm.
    difference
        ``treatment - control``.
    lower, upper
        Confidence interval of the difference at ``1 - alpha``.
    p_value
        Two-sided p-value of "no difference".
    alpha
        Significance level.
    """

    __test__ = False  # not a pytest test class despite the name

    method: str
    control: float
    treatment: float
    n_control: int
    n_treatment: int
    difference: float
    lower: float
    upper: float
    p_value: float
    alpha: float = 0.05

    @property
    def significant(self) -> bool:
        """Whether the interval excludes zero (equivalently, ``p_value < alpha``)."""
        return bool(self.p_value < self.alpha)

    @property
    def relative_lift(self) -> float:
        """``difference / |control|`` (NaN when the control is zero)."""
        return self.difference / abs(self.control) if self.control else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable form (NaN becomes ``None``)."""
        out = asdict(self)
        out["significant"] = self.significant
        out["relative_lift"] = self.relative_lift
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in out.items()
        }


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ExperimentError(
            f"alpha must lie strictly between 0 and 1, got {alpha}; use e.g. 0.05."
        )


def proportion_test(
    successes_control: int,
    n_control: int,
    successes_treatment: int,
    n_treatment: int,
    *,
    alpha: float = 0.05,
) -> TestResult:
    """Two-proportion z-test with the Wald interval of the difference in rates.

    Parameters
    ----------
    successes_control, n_control
        Conversions and units in the control arm.
    successes_treatment, n_treatment
        Conversions and units in the treatment arm.
    alpha
        Significance level; the interval has coverage ``1 - alpha``.

    Returns
    -------
    TestResult
        ``difference = rate_treatment - rate_control``; the p-value is the pooled z-test's.

    Examples
    --------
    >>> r = proportion_test(100, 1000, 140, 1000)
    >>> round(r.difference, 3), r.significant
    (0.04, True)
    """
    # deferred: statsmodels (~0.45 s) is only for the statistics, not `experiment start`
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    _check_alpha(alpha)
    for name, s, n in (
        ("control", successes_control, n_control),
        ("treatment", successes_treatment, n_treatment),
    ):
        if n <= 0 or s < 0 or s > n:
            raise ExperimentError(
                f"the {name} arm has {s} successes out of {n} units; counts must satisfy "
                "0 <= successes <= units and units > 0. Collect outcomes in both arms first."
            )
    rate_c = successes_control / n_control
    rate_t = successes_treatment / n_treatment
    if successes_control + successes_treatment in (0, n_control + n_treatment):
        # All-zero or all-one data: the pooled variance is zero, no evidence of a difference.
        p_value = 1.0
    else:
        _, p_value = proportions_ztest(
            [successes_treatment, successes_control], [n_treatment, n_control]
        )
    lower, upper = confint_proportions_2indep(
        successes_treatment,
        n_treatment,
        successes_control,
        n_control,
        method="wald",
        compare="diff",
        alpha=alpha,
    )
    return TestResult(
        method="two_proportion_z",
        control=rate_c,
        treatment=rate_t,
        n_control=int(n_control),
        n_treatment=int(n_treatment),
        difference=rate_t - rate_c,
        lower=float(lower),
        upper=float(upper),
        p_value=float(p_value),
        alpha=alpha,
    )


def _values(name: str, values: Sequence[float] | np.ndarray, minimum: int = 2) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    if array.size < minimum:
        raise ExperimentError(
            f"the {name} arm has {array.size} finite values; at least {minimum} are needed. "
            "Record more outcomes for that arm."
        )
    return array


def welch_test(
    control: Sequence[float] | np.ndarray,
    treatment: Sequence[float] | np.ndarray,
    *,
    alpha: float = 0.05,
) -> TestResult:
    """Welch's unequal-variance t-test with the interval of the difference in means.

    Parameters
    ----------
    control, treatment
        Per-unit values (revenue, latency, ...); non-finite values are dropped.
    alpha
        Significance level.

    Returns
    -------
    TestResult
        ``difference = mean(treatment) - mean(control)``.
    """
    # deferred: scipy.stats (~1.2 s) is only for the statistics, not `experiment start`
    from scipy import stats

    _check_alpha(alpha)
    a = _values("control", control)
    b = _values("treatment", treatment)
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        # Constant arms: scipy returns NaN; the difference is exact.
        diff = float(b[0] - a[0])
        return TestResult(
            "welch_t",
            float(a[0]),
            float(b[0]),
            a.size,
            b.size,
            diff,
            diff,
            diff,
            1.0 if diff == 0 else 0.0,
            alpha,
        )
    result = stats.ttest_ind(b, a, equal_var=False)
    interval = result.confidence_interval(confidence_level=1.0 - alpha)
    return TestResult(
        method="welch_t",
        control=float(a.mean()),
        treatment=float(b.mean()),
        n_control=int(a.size),
        n_treatment=int(b.size),
        difference=float(b.mean() - a.mean()),
        lower=float(interval.low),
        upper=float(interval.high),
        p_value=float(result.pvalue),
        alpha=alpha,
    )


_QUANTILES = {"median": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}


def _weighted_statistic(name: str, values: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A statistic of bootstrap count matrices ``(B, n)`` for EVAL's resampling engine."""
    if name == "mean":
        return lambda w: (w @ values) / values.size
    if name in _QUANTILES:
        order = np.argsort(values, kind="stable")
        ordered = values[order]
        q = _QUANTILES[name]

        def quantile(w: np.ndarray) -> np.ndarray:
            cumulative = np.cumsum(w[:, order], axis=1)
            # The lower empirical quantile: first sorted value whose count reaches q * n.
            index = (cumulative < q * values.size).sum(axis=1)
            return ordered[np.minimum(index, values.size - 1)]

        return quantile
    raise ExperimentError(
        f"unknown bootstrap statistic {name!r}; use one of mean, median, p90, p95, p99 or pass "
        "a callable."
    )


def bootstrap_test(
    control: Sequence[float] | np.ndarray,
    treatment: Sequence[float] | np.ndarray,
    *,
    statistic: str | Callable[[np.ndarray], float] = "median",
    alpha: float = 0.05,
    n_resamples: int = 2000,
    seed: int = 0,
) -> TestResult:
    """Bootstrap interval of the difference of any statistic between two independent arms.

    Each arm is resampled on its own with mlwright's evaluation bootstrap
    (:func:`mlwright.evaluate.bootstrap_interval`'s engine); the percentile interval of
    ``statistic(treatment*) - statistic(control*)`` is reported and the p-value is the
    two-sided share of resampled differences on the other side of zero.

    Parameters
    ----------
    control, treatment
        Per-unit values.
    statistic
        ``"mean"``, ``"median"``, ``"p90"``, ``"p95"``, ``"p99"`` (vectorised) or a callable
        mapping a 1-D array to a number.
    alpha, n_resamples, seed
        Significance level, resamples per arm, random seed.
    """
    # deferred: mlwright.evaluate loads scikit-learn (~0.7 s); only the bootstrap test needs it
    from mlwright.evaluate._intervals import bootstrap_distribution, percentile_interval

    _check_alpha(alpha)
    a = _values("control", control)
    b = _values("treatment", treatment)
    if callable(statistic):
        fn = statistic

        def _dist(values: np.ndarray, s: int) -> np.ndarray:
            rng = np.random.default_rng(s)
            return np.array(
                [fn(values[rng.integers(0, values.size, values.size)]) for _ in range(n_resamples)]
            )

        point_a, point_b = float(fn(a)), float(fn(b))
        dist_a, dist_b = _dist(a, seed), _dist(b, seed + 1)
        name = getattr(fn, "__name__", "statistic")
    else:
        name = statistic
        stat_a, stat_b = _weighted_statistic(statistic, a), _weighted_statistic(statistic, b)
        point_a = float(stat_a(np.ones((1, a.size)))[0])
        point_b = float(stat_b(np.ones((1, b.size)))[0])
        dist_a = bootstrap_distribution(stat_a, a.size, n_resamples=n_resamples, seed=seed)
        dist_b = bootstrap_distribution(stat_b, b.size, n_resamples=n_resamples, seed=seed + 1)
    differences = np.asarray(dist_b, dtype=float) - np.asarray(dist_a, dtype=float)
    interval = percentile_interval(point_b - point_a, differences, 1.0 - alpha)
    finite = differences[np.isfinite(differences)]
    tail = min((finite <= 0).mean(), (finite >= 0).mean()) if finite.size else 0.5
    return TestResult(
        method=f"bootstrap_{name}",
        control=point_a,
        treatment=point_b,
        n_control=int(a.size),
        n_treatment=int(b.size),
        difference=point_b - point_a,
        lower=interval.lower,
        upper=interval.upper,
        p_value=float(min(1.0, 2.0 * tail)),
        alpha=alpha,
    )


@dataclass(frozen=True)
class Plan:
    """How many units an experiment needs.

    Attributes
    ----------
    metric
        ``"proportion"`` or ``"mean"``.
    baseline, target
        The control's expected value and the value the treatment must reach to be detected.
    mde
        Absolute minimum detectable effect (``target - baseline``).
    alpha, power, ratio
        Two-sided significance level, power, treatment units per control unit.
    effect_size
        Standardised effect (Cohen's h for proportions, d for means).
    n_control, n_treatment
        Units needed per arm (rounded up).
    """

    metric: str
    baseline: float
    target: float
    mde: float
    alpha: float
    power: float
    ratio: float
    effect_size: float
    n_control: int
    n_treatment: int
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Units across both arms."""
        return self.n_control + self.n_treatment

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable form."""
        return {**asdict(self), "total": self.total}


def plan(
    baseline: float,
    mde: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    relative: bool = False,
    std: float | None = None,
) -> Plan:
    """Sample size per arm to detect an effect of ``mde`` with the given power.

    Parameters
    ----------
    baseline
        Control conversion rate (a proportion in (0, 1)) or, with ``std``, the control mean.
    mde
        Minimum detectable effect, absolute (``0.01`` = one percentage point) unless
        ``relative`` (then a fraction of ``baseline``).
    alpha, power
        Two-sided significance level and desired power.
    ratio
        Treatment units per control unit (``1`` = equal split).
    std
        Per-unit standard deviation for a continuous metric; without it the metric is a
        proportion.

    Returns
    -------
    Plan

    Examples
    --------
    >>> p = plan(0.1, 0.01)
    >>> p.n_control
    14745
    """
    # deferred: statsmodels (~0.45 s) is only for the statistics, not `experiment start`
    from statsmodels.stats.power import NormalIndPower

    # deferred: statsmodels (~0.45 s) is only for the statistics, not `experiment start`
    from statsmodels.stats.proportion import proportion_effectsize

    _check_alpha(alpha)
    if not 0.0 < power < 1.0:
        raise ExperimentError(f"power must lie strictly between 0 and 1, got {power}; use 0.8.")
    if ratio <= 0:
        raise ExperimentError(f"ratio must be positive, got {ratio}; use 1 for an equal split.")
    absolute = mde * baseline if relative else mde
    if absolute == 0:
        raise ExperimentError("the minimum detectable effect (--mde) must not be zero.")
    target = baseline + absolute
    if std is None:
        if not 0.0 < baseline < 1.0 or not 0.0 < target < 1.0:
            raise ExperimentError(
                f"a conversion baseline must lie in (0, 1) and baseline + mde too; got "
                f"baseline {baseline} and target {target}. Pass --std for a continuous metric."
            )
        effect = float(proportion_effectsize(target, baseline))
        metric = "proportion"
    else:
        if std <= 0:
            raise ExperimentError(f"--std must be positive, got {std}.")
        effect = absolute / std
        metric = "mean"
    n = NormalIndPower().solve_power(
        effect_size=abs(effect), alpha=alpha, power=power, ratio=ratio, alternative="two-sided"
    )
    n_control = int(math.ceil(float(np.asarray(n).item()) - 1e-9))
    return Plan(
        metric=metric,
        baseline=baseline,
        target=target,
        mde=absolute,
        alpha=alpha,
        power=power,
        ratio=ratio,
        effect_size=effect,
        n_control=n_control,
        n_treatment=int(math.ceil(n_control * ratio - 1e-9)),
    )


def power_at(
    baseline: float, mde: float, n_control: int, *, alpha: float = 0.05, ratio: float = 1.0
) -> float:
    """Power of the two-sided two-proportion test with ``n_control`` control units."""
    # deferred: statsmodels (~0.45 s) is only for the statistics, not `experiment start`
    from statsmodels.stats.power import NormalIndPower

    # deferred: statsmodels (~0.45 s) is only for the statistics, not `experiment start`
    from statsmodels.stats.proportion import proportion_effectsize

    effect = abs(float(proportion_effectsize(baseline + mde, baseline)))
    return float(
        NormalIndPower().power(effect_size=effect, nobs1=n_control, alpha=alpha, ratio=ratio)
    )


@dataclass(frozen=True)
class SRMResult:
    """Sample-ratio-mismatch check: do the arms hold the shares the weights promise?

    Attributes
    ----------
    observed, expected
        Units per arm, observed and expected from the weights.
    statistic, p_value
        Chi-square goodness-of-fit statistic and p-value.
    threshold
        The p-value below which a mismatch is declared (0.001 by convention, because the
        check runs continuously and a false alarm stops the experiment).
    """

    observed: dict[str, int]
    expected: dict[str, float]
    statistic: float
    p_value: float
    threshold: float = 0.001

    @property
    def mismatch(self) -> bool:
        """Whether the split differs from the weights beyond sampling error."""
        return bool(self.p_value < self.threshold)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable form."""
        return {**asdict(self), "mismatch": self.mismatch}


def srm_check(
    counts: Mapping[str, int],
    weights: Mapping[str, float],
    *,
    threshold: float = 0.001,
) -> SRMResult:
    """Chi-square test of observed arm counts against the configured weights.

    Parameters
    ----------
    counts
        Units (or requests) per arm.
    weights
        The arms' traffic weights (need not sum to one); arms with zero weight must have zero
        units.
    threshold
        p-value below which a mismatch is declared.

    Examples
    --------
    >>> srm_check({"a": 5000, "b": 5050}, {"a": 0.5, "b": 0.5}).mismatch
    False
    """
    # deferred: scipy.stats (~1.2 s) is only for the statistics, not `experiment start`
    from scipy import stats

    arms = [arm for arm in weights if weights[arm] > 0]
    total_weight = float(sum(weights[arm] for arm in arms))
    unknown = sorted(set(counts) - set(weights))
    if unknown:
        raise ExperimentError(
            f"counts name arms {unknown} that have no weight; arms are {sorted(weights)}."
        )
    observed = np.array([int(counts.get(arm, 0)) for arm in arms], dtype=float)
    n = observed.sum()
    expected = np.array([weights[arm] / total_weight * n for arm in arms])
    stray = sum(int(counts.get(arm, 0)) for arm in weights if weights[arm] <= 0)
    if n == 0 or len(arms) < 2:
        statistic, p_value = 0.0, 1.0
    else:
        statistic, p_value = (float(x) for x in stats.chisquare(observed, expected))
    if stray:
        # Units in a zero-weight arm cannot be explained by sampling error at all.
        p_value = 0.0
    return SRMResult(
        observed={arm: int(counts.get(arm, 0)) for arm in weights},
        expected={arm: float(e) for arm, e in zip(arms, expected, strict=True)},
        statistic=float(statistic),
        p_value=float(p_value),
        threshold=threshold,
    )
