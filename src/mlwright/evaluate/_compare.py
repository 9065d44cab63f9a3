"""Is model B better than model A on the same rows? The test promotion relies on.

Both models are scored on *identical* bootstrap resamples of the rows (the same index matrix),
so the spread of the difference reflects only how the two models disagree, not how hard the
rows are: a paired bootstrap. The p-value is two-sided and inverts the percentile interval of
the difference, so "the (1 - alpha) interval excludes zero" and "p < alpha" say the same thing.
For accuracy-like decisions McNemar's exact or chi-squared test on the discordant rows is
reported as well (statsmodels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from statsmodels.stats.contingency_tables import mcnemar

from mlwright.errors import ConfigError, DataError
from mlwright.evaluate._intervals import (
    Interval,
    check_resampling,
    percentile_interval,
    resample_weights,
)
from mlwright.evaluate._metrics import (
    EvalData,
    canonical_name,
    greater_is_better,
    prepare,
    weighted_metric,
)

BETTER = "better"
WORSE = "worse"
NOT_DISTINGUISHABLE = "not distinguishable"
DEFAULT_METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
# Below this many discordant rows the chi-squared approximation is poor: use the exact test.
_MCNEMAR_EXACT_BELOW = 25


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing model B with model A on the same rows.

    Attributes
    ----------
    metric, greater_is_better
        The metric compared and its direction.
    a, b
        Each model's metric with its bootstrap interval.
    difference
        ``metric(B) - metric(A)`` with its paired bootstrap interval at ``1 - alpha``.
    p_value
        Two-sided paired bootstrap p-value of "no difference".
    alpha
        The significance level of the verdict.
    verdict
        ``"better"``, ``"worse"`` or ``"not distinguishable"``: B relative to A.
    mcnemar
        Classification only: McNemar's test on the rows exactly one model gets right
        (``statistic``, ``p_value``, ``exact``, ``only_a_correct``, ``only_b_correct``).
    n_rows, n_resamples, seed
        What was measured.
    names
        Display names of A and B.
    """

    metric: str
    greater_is_better: bool
    a: Interval
    b: Interval
    difference: Interval
    p_value: float
    alpha: float
    verdict: str
    mcnemar: dict[str, Any] | None
    n_rows: int
    n_resamples: int
    seed: int
    names: tuple[str, str] = ("A", "B")

    @property
    def b_is_better(self) -> bool:
        """Whether B is significantly better than A at ``alpha``."""
        return self.verdict == BETTER

    def summary(self) -> str:
        """One sentence a person can act on."""
        name_a, name_b = self.names
        sign = "+" if self.difference.value >= 0 else ""
        level = round((1 - self.alpha) * 100)
        interval = (
            f"{level}% CI [{self.difference.lower:.4g}, {self.difference.upper:.4g}]"
            if np.isfinite(self.difference.lower)
            else "interval undefined"
        )
        head = {
            BETTER: f"{name_b} is better than {name_a}",
            WORSE: f"{name_b} is worse than {name_a}",
            NOT_DISTINGUISHABLE: f"{name_b} and {name_a} are not distinguishable",
        }[self.verdict]
        return (
            f"{head} on {self.metric} at alpha={self.alpha:g}: {self.b.value:.4g} vs "
            f"{self.a.value:.4g}, difference {sign}{self.difference.value:.4g} ({interval}, "
            f"p={self.p_value:.3g}, {self.n_rows} rows)."
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "metric": self.metric,
            "greater_is_better": self.greater_is_better,
            "names": list(self.names),
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
            "difference": self.difference.to_dict(),
            "p_value": self.p_value,
            "alpha": self.alpha,
            "verdict": self.verdict,
            "summary": self.summary(),
            "mcnemar": self.mcnemar,
            "n_rows": self.n_rows,
            "n_resamples": self.n_resamples,
            "seed": self.seed,
        }


def mcnemar_test(correct_a, correct_b) -> dict[str, Any]:
    """McNemar's test of equal accuracy from per-row correctness of two models.

    Parameters
    ----------
    correct_a, correct_b
        Boolean arrays: whether each model got each row right.

    Returns
    -------
    dict
        ``statistic``, ``p_value``, ``exact`` (binomial test used), ``only_a_correct``,
        ``only_b_correct``, ``table`` (2x2: rows A right/wrong, columns B right/wrong).
    """
    correct_a = np.asarray(correct_a, dtype=bool)
    correct_b = np.asarray(correct_b, dtype=bool)
    table = np.array(
        [
            [np.sum(correct_a & correct_b), np.sum(correct_a & ~correct_b)],
            [np.sum(~correct_a & correct_b), np.sum(~correct_a & ~correct_b)],
        ]
    )
    only_a, only_b = int(table[0, 1]), int(table[1, 0])
    discordant = only_a + only_b
    exact = discordant < _MCNEMAR_EXACT_BELOW
    if discordant == 0:
        # The models agree on every row: there is nothing to test.
        statistic, p_value = 0.0, 1.0
    else:
        result = mcnemar(table, exact=exact, correction=True)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    return {
        "statistic": statistic,
        "p_value": min(1.0, p_value),
        "exact": exact,
        "only_a_correct": only_a,
        "only_b_correct": only_b,
        "table": table.tolist(),
    }


def paired_p_value(improvement: np.ndarray) -> float:
    """Two-sided bootstrap p-value of "no difference" from resampled improvements.

    Twice the smaller tail beyond zero, with the +1 correction that keeps it above zero for a
    finite number of resamples.
    """
    defined = improvement[np.isfinite(improvement)]
    if defined.size == 0:
        return float("nan")
    below = (np.sum(defined <= 0) + 1) / (defined.size + 1)
    above = (np.sum(defined >= 0) + 1) / (defined.size + 1)
    return float(min(1.0, 2.0 * min(below, above)))


def compare_predictions(
    y_true,
    predictions_a,
    predictions_b,
    *,
    metric: str | None = None,
    task: str | None = None,
    classes=None,
    alpha: float = 0.05,
    n_resamples: int = 1000,
    seed: int = 0,
    threshold_a: float | None = None,
    threshold_b: float | None = None,
    names: tuple[str, str] = ("A", "B"),
) -> Comparison:
    """Compare two models' predictions on the same rows with a paired bootstrap.

    Parameters
    ----------
    y_true
        True labels or values, shape ``(n,)``.
    predictions_a, predictions_b
        Each model's probabilities (classification) or values (regression) on those rows,
        as accepted by :func:`mlwright.evaluate.bootstrap_interval`.
    metric
        The metric to compare on (default: the task's default metric: ROC AUC for binary,
        log loss for multiclass, RMSE for regression).
    task, classes
        As for :func:`bootstrap_interval`.
    alpha
        Significance level of the verdict; the difference's interval is at ``1 - alpha``.
    n_resamples, seed
        Bootstrap settings.
    threshold_a, threshold_b
        Binary decision thresholds of each model (label metrics only).
    names
        Display names of the two models, used in :meth:`Comparison.summary`.

    Returns
    -------
    Comparison
        The verdict of B against A, the difference with its interval and p-value, and
        McNemar's test for classification.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 300)
    >>> p = np.clip(0.5 * y + rng.uniform(0, 0.5, 300), 0, 1)
    >>> compare_predictions(y, p, p, metric="accuracy").verdict
    'not distinguishable'
    """
    if not 0.0 < float(alpha) < 1.0:
        raise ConfigError(
            f"alpha must be between 0 and 1 (exclusive); got {alpha}. Use 0.05 for the usual "
            "5% significance level."
        )
    check_resampling(n_resamples, 1 - alpha)
    data_a = prepare(y_true, predictions_a, task=task, classes=classes, threshold=threshold_a)
    data_b = prepare(
        y_true, predictions_b, task=data_a.task, classes=data_a.classes, threshold=threshold_b
    )
    return compare_prepared(
        data_a,
        data_b,
        metric=metric,
        alpha=alpha,
        n_resamples=n_resamples,
        seed=seed,
        names=names,
    )


def compare_prepared(
    data_a: EvalData,
    data_b: EvalData,
    *,
    metric: str | None = None,
    alpha: float = 0.05,
    n_resamples: int = 1000,
    seed: int = 0,
    names: tuple[str, str] = ("A", "B"),
) -> Comparison:
    """:func:`compare_predictions` on already encoded predictions (same rows, same task)."""
    if data_a.n_rows != data_b.n_rows or not np.array_equal(data_a.y_true, data_b.y_true):
        raise DataError(
            "The two models must be compared on the same rows with the same true values; "
            f"got {data_a.n_rows} and {data_b.n_rows} rows."
        )
    metric = canonical_name(metric or DEFAULT_METRIC[data_a.task])
    higher = greater_is_better(metric, data_a.task)
    ones = np.ones((1, data_a.n_rows))
    value_a = float(weighted_metric(metric, data_a, ones)[0])
    value_b = float(weighted_metric(metric, data_b, ones)[0])
    resampled_a, resampled_b = [], []
    for weights in resample_weights(data_a.n_rows, n_resamples, seed):
        resampled_a.append(weighted_metric(metric, data_a, weights))
        resampled_b.append(weighted_metric(metric, data_b, weights))
    dist_a = np.concatenate(resampled_a)
    dist_b = np.concatenate(resampled_b)
    difference = dist_b - dist_a
    improvement = difference if higher else -difference
    p_value = paired_p_value(improvement)
    observed = value_b - value_a
    observed_improvement = observed if higher else -observed
    if np.isfinite(p_value) and p_value < alpha and observed_improvement != 0:
        verdict = BETTER if observed_improvement > 0 else WORSE
    else:
        verdict = NOT_DISTINGUISHABLE
    mcnemar = None
    if data_a.task != "regression":
        mcnemar = mcnemar_test(data_a.pred == data_a.y_true, data_b.pred == data_b.y_true)
    return Comparison(
        metric=metric,
        greater_is_better=higher,
        a=percentile_interval(value_a, dist_a, 1 - alpha),
        b=percentile_interval(value_b, dist_b, 1 - alpha),
        difference=percentile_interval(observed, difference, 1 - alpha),
        p_value=p_value,
        alpha=float(alpha),
        verdict=verdict,
        mcnemar=mcnemar,
        n_rows=data_a.n_rows,
        n_resamples=int(n_resamples),
        seed=int(seed),
        names=tuple(names),
    )
