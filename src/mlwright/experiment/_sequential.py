"""Sequential testing that may be read at any time: the normal-mixture SPRT (mSPRT).

Johari, Koomen, Pekelis and Walsh ("Always valid inference", 2017/2022) mix the likelihood
ratio of a difference ``theta`` over a normal prior ``N(theta0, tau^2)``. With the estimated
difference ``d`` and its variance ``V`` (``s_a^2/n_a + s_b^2/n_b``) the mixture ratio is

    Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 (d - theta0)^2 / (2 V (V + tau^2)))

which is a non-negative martingale under the null, so by Ville's inequality
``P(sup_n Lambda_n >= 1/alpha) <= alpha``: rejecting the first time ``Lambda`` crosses
``1/alpha`` keeps the false-positive rate at ``alpha`` however often the data are looked at.
The always-valid p-value is ``min(1, min_{m <= n} 1/Lambda_m)`` and the confidence sequence
is the running intersection of ``{theta0 : Lambda_n(theta0) < 1/alpha}``.

Every function is vectorised over leading axes (the last axis is time), so simulations of
thousands of experiments run in one call.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mlwright.experiment._errors import ExperimentError


def log_mixture_ratio(
    difference: np.ndarray, variance: np.ndarray, tau: float | np.ndarray, theta0: float = 0.0
) -> np.ndarray:
    """Log of the normal-mixture likelihood ratio (element-wise).

    Parameters
    ----------
    difference
        Estimated difference ``treatment - control`` at each look.
    variance
        Its variance at each look (``s_a^2/n_a + s_b^2/n_b``); looks with a non-positive or
        non-finite variance give ``-inf`` (no evidence yet).
    tau
        Standard deviation of the mixing prior: the effect size the test is most sensitive to.
    theta0
        The null value of the difference.
    """
    d = np.asarray(difference, dtype=float) - theta0
    v = np.asarray(variance, dtype=float)
    tau2 = np.asarray(tau, dtype=float) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        value = 0.5 * np.log(v / (v + tau2)) + tau2 * d * d / (2.0 * v * (v + tau2))
    return np.where(np.isfinite(value) & (v > 0), value, -np.inf)


def always_valid_p_values(
    difference: np.ndarray, variance: np.ndarray, tau: float | np.ndarray, theta0: float = 0.0
) -> np.ndarray:
    """Always-valid p-values along the last axis: ``min(1, running min of 1/Lambda)``."""
    log_ratio = log_mixture_ratio(difference, variance, tau, theta0)
    p = np.minimum(1.0, np.exp(-log_ratio))
    return np.minimum.accumulate(p, axis=-1)


def confidence_sequence(
    difference: np.ndarray,
    variance: np.ndarray,
    tau: float | np.ndarray,
    alpha: float = 0.05,
) -> tuple[np.ndarray, np.ndarray]:
    """Always-valid ``1 - alpha`` confidence sequence of the difference along the last axis.

    Returns
    -------
    lower, upper
        Running intersection of the mSPRT acceptance regions (``-inf``/``inf`` before the
        variance is defined).
    """
    d = np.asarray(difference, dtype=float)
    v = np.asarray(variance, dtype=float)
    tau2 = np.asarray(tau, dtype=float) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        half = np.sqrt(
            2.0 * v * (v + tau2) / tau2 * (math.log(1.0 / alpha) + 0.5 * np.log((v + tau2) / v))
        )
    half = np.where(np.isfinite(half) & (v > 0), half, np.inf)
    lower = np.maximum.accumulate(np.where(np.isfinite(half), d - half, -np.inf), axis=-1)
    upper = np.minimum.accumulate(np.where(np.isfinite(half), d + half, np.inf), axis=-1)
    return lower, upper


def running_moments(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative count, mean and unbiased variance along the last axis (NaN below 2)."""
    x = np.asarray(values, dtype=float)
    n = np.arange(1, x.shape[-1] + 1, dtype=float)
    s1 = np.cumsum(x, axis=-1)
    s2 = np.cumsum(x * x, axis=-1)
    mean = s1 / n
    with np.errstate(divide="ignore", invalid="ignore"):
        var = np.where(n > 1, (s2 - n * mean * mean) / (n - 1), np.nan)
    return n, mean, np.maximum(var, 0.0)


@dataclass(frozen=True)
class SequentialResult:
    """The mSPRT after the last observation.

    Attributes
    ----------
    difference
        ``treatment - control`` of the means (rates for a conversion metric).
    p_value
        Always-valid p-value (the minimum over every look so far).
    lower, upper
        Always-valid ``1 - alpha`` confidence sequence at the last look.
    tau
        Mixing standard deviation used.
    alpha
        Significance level.
    n_control, n_treatment
        Observations per arm.
    looks
        Looks the process was evaluated at (one per observation after the burn-in).
    """

    difference: float
    p_value: float
    lower: float
    upper: float
    tau: float
    alpha: float
    n_control: int
    n_treatment: int
    looks: int

    @property
    def significant(self) -> bool:
        """Whether the always-valid p-value fell below ``alpha``."""
        return bool(self.p_value < self.alpha)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable form (infinities become ``None``)."""
        out = {**asdict(self), "significant": self.significant}
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in out.items()
        }


def sequential_test(
    arms: np.ndarray,
    values: np.ndarray,
    *,
    tau: float | None = None,
    alpha: float = 0.05,
    min_samples: int = 100,
) -> SequentialResult:
    """Run the mSPRT over a time-ordered stream of per-unit values from two arms.

    The process is evaluated after every observation once each arm holds ``min_samples``
    values (the plug-in variance is unreliable before that), and the p-value is the minimum
    over all those looks, which is what makes reading it at any moment safe.

    Parameters
    ----------
    arms
        Boolean array, ``True`` where the observation belongs to the treatment arm.
    values
        Per-unit values in time order (0/1 for conversions).
    tau
        Mixing standard deviation; by default a tenth of the pooled per-unit standard
        deviation (a "small" standardised effect), fixed from the first ``min_samples`` looks
        so it does not depend on later data.
    alpha
        Significance level of the confidence sequence.
    min_samples
        Burn-in per arm before the first look.
    """
    if not 0.0 < alpha < 1.0:
        raise ExperimentError(f"alpha must lie strictly between 0 and 1, got {alpha}.")
    treat = np.asarray(arms, dtype=bool)
    x = np.asarray(values, dtype=float)
    if treat.shape != x.shape or x.ndim != 1:
        raise ExperimentError("arms and values must be 1-D arrays of the same length.")
    n_b = np.cumsum(treat).astype(float)
    n_a = np.cumsum(~treat).astype(float)
    s1_a, s1_b = np.cumsum(np.where(treat, 0.0, x)), np.cumsum(np.where(treat, x, 0.0))
    s2_a, s2_b = np.cumsum(np.where(treat, 0.0, x * x)), np.cumsum(np.where(treat, x * x, 0.0))
    ready = (n_a >= max(min_samples, 2)) & (n_b >= max(min_samples, 2))
    n_ctrl, n_trt = int(n_a[-1]) if x.size else 0, int(n_b[-1]) if x.size else 0
    if not ready.any():
        return SequentialResult(
            float("nan"), 1.0, -math.inf, math.inf, float(tau or math.nan), alpha, n_ctrl, n_trt, 0
        )
    n_a, n_b, s1_a, s1_b, s2_a, s2_b = (a[ready] for a in (n_a, n_b, s1_a, s1_b, s2_a, s2_b))
    mean_a, mean_b = s1_a / n_a, s1_b / n_b
    var_a = np.maximum((s2_a - n_a * mean_a**2) / (n_a - 1), 0.0)
    var_b = np.maximum((s2_b - n_b * mean_b**2) / (n_b - 1), 0.0)
    difference = mean_b - mean_a
    variance = var_a / n_a + var_b / n_b
    if tau is None:
        pooled = math.sqrt(max((var_a[0] + var_b[0]) / 2.0, 0.0))
        tau = 0.1 * pooled if pooled > 0 else 1e-3
    p = always_valid_p_values(difference, variance, tau)
    lower, upper = confidence_sequence(difference, variance, tau, alpha)
    return SequentialResult(
        difference=float(difference[-1]),
        p_value=float(p[-1]),
        lower=float(lower[-1]),
        upper=float(upper[-1]),
        tau=float(tau),
        alpha=alpha,
        n_control=n_ctrl,
        n_treatment=n_trt,
        looks=int(difference.size),
    )
