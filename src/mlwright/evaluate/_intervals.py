"""Bootstrap confidence intervals, vectorised over resamples.

A bootstrap resample of ``n`` rows is drawn as a row of an index matrix (``rng.integers``) and
turned into a *count vector*: how many times each original row was drawn. Every metric
mlwright knows is then a weighted metric evaluated on a ``(resamples, rows)`` matrix of counts
with a few matrix products and cumulative sums, so 1,000 resamples of 16,000 rows take well
under a second. Metrics that only exist as a Python callable are resampled row by row of the
same index matrix (slower, same statistics).

Resamples are processed in chunks to bound memory (a chunk of 128 x 16k counts is 16 MB).
The same seed always draws the same index matrix, which is what makes the paired comparison
of two models (:mod:`mlwright.evaluate._compare`) use identical rows for both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import numpy as np

from mlwright.errors import ConfigError
from mlwright.evaluate._metrics import prepare, weighted_metric

# Chunk size in resamples; chosen so that a chunk of counts on ~16k rows stays near 16 MB.
_CHUNK_CELLS = 2_000_000


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap confidence interval.

    Attributes
    ----------
    value
        The statistic on the full data.
    lower, upper
        Percentile bootstrap bounds (NaN when too few resamples defined the statistic).
    confidence
        The nominal coverage, e.g. 0.95.
    n_resamples
        Resamples drawn; ``n_undefined`` of them could not compute the statistic (for example
        ROC AUC on a resample holding one class only) and were left out.
    """

    value: float
    lower: float
    upper: float
    confidence: float = 0.95
    n_resamples: int = 0
    n_undefined: int = 0

    def to_dict(self) -> dict[str, float | int]:
        """Plain JSON-serialisable form (NaN becomes ``None``)."""
        return {
            key: (None if isinstance(value, float) and not np.isfinite(value) else value)
            for key, value in asdict(self).items()
        }


def check_resampling(n_resamples: int, confidence: float) -> None:
    """Refuse resample counts and confidence levels that cannot give an interval."""
    if int(n_resamples) < 1:
        raise ConfigError(
            f"The number of bootstrap resamples must be at least 1; got {n_resamples}. "
            "Use 1000 (the default) for 95% intervals."
        )
    if not 0.0 < float(confidence) < 1.0:
        raise ConfigError(
            f"The confidence level must be between 0 and 1 (exclusive); got {confidence}. "
            "Use 0.95 for 95% intervals."
        )


def resample_indices(n_rows: int, n_resamples: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Yield chunks of the bootstrap index matrix, shape ``(chunk, n_rows)``.

    The concatenation of the chunks is the same for a given ``(n_rows, n_resamples, seed)``.
    """
    if n_rows < 1:
        raise ConfigError("Cannot bootstrap an empty set of rows: the data has 0 rows.")
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_resamples, _CHUNK_CELLS // n_rows))
    dtype = np.int32 if n_rows < 2**31 else np.int64
    done = 0
    while done < n_resamples:
        size = min(chunk, n_resamples - done)
        yield rng.integers(0, n_rows, size=(size, n_rows), dtype=dtype)
        done += size


def counts_from_indices(indices: np.ndarray) -> np.ndarray:
    """Turn an index matrix ``(B, n)`` into per-row draw counts ``(B, n)`` as float64."""
    n_resamples, n_rows = indices.shape
    offsets = (np.arange(n_resamples, dtype=np.int64) * n_rows)[:, None]
    flat = (indices + offsets).ravel()
    counts = np.bincount(flat, minlength=n_resamples * n_rows)
    return counts.reshape(n_resamples, n_rows).astype(np.float64)


def resample_weights(n_rows: int, n_resamples: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Yield chunks of bootstrap count vectors ``(chunk, n_rows)`` (each row sums to n)."""
    for indices in resample_indices(n_rows, n_resamples, seed):
        yield counts_from_indices(indices)


def bootstrap_distribution(
    statistic: Callable[[np.ndarray], np.ndarray],
    n_rows: int,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """Evaluate a weighted statistic on every bootstrap resample.

    Parameters
    ----------
    statistic
        Maps a weight matrix ``(B, n_rows)`` to ``(B,)`` or ``(B, m)`` values.
    n_rows, n_resamples, seed
        Size of the data, number of resamples, random seed.

    Returns
    -------
    numpy.ndarray
        ``(n_resamples,)`` or ``(n_resamples, m)``.
    """
    parts = [
        np.asarray(statistic(weights)) for weights in resample_weights(n_rows, n_resamples, seed)
    ]
    return np.concatenate(parts, axis=0)


def percentile_interval(
    value: float, distribution: np.ndarray, confidence: float = 0.95
) -> Interval:
    """Percentile bootstrap interval from a 1-D array of resampled statistics."""
    distribution = np.asarray(distribution, dtype=float)
    defined = distribution[np.isfinite(distribution)]
    n_undefined = int(distribution.size - defined.size)
    # Fewer than 10 defined resamples cannot place a 95% percentile meaningfully.
    if defined.size < 10:
        lower = upper = float("nan")
    else:
        tail = (1.0 - confidence) / 2.0 * 100.0
        lower, upper = (float(x) for x in np.percentile(defined, [tail, 100.0 - tail]))
    return Interval(
        value=float(value),
        lower=lower,
        upper=upper,
        confidence=float(confidence),
        n_resamples=int(distribution.size),
        n_undefined=n_undefined,
    )


def bootstrap_interval(
    metric: str | Callable[..., float],
    y_true,
    y_pred,
    *,
    task: str | None = None,
    classes=None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Bootstrap confidence interval of any metric.

    Parameters
    ----------
    metric
        A metric name mlwright computes vectorised (``"accuracy"``, ``"roc_auc"``, ``"rmse"``,
        ... see :func:`mlwright.evaluate.metric_names`), or any callable
        ``metric(y_true, y_pred) -> float`` (resampled one resample at a time).
    y_true
        True labels or values, shape ``(n,)``.
    y_pred
        For named classification metrics: class probabilities ``(n, n_classes)`` (columns in
        the order of ``classes``) or, for a binary task, the positive-class probability
        ``(n,)``. For regression: predicted values. For a callable: whatever it expects.
    task
        ``"binary"``, ``"multiclass"`` or ``"regression"``; inferred when omitted.
    classes
        Class labels in the column order of ``y_pred`` (default: sorted distinct labels).
    n_resamples, confidence, seed
        Bootstrap settings; the same seed draws the same resamples.

    Returns
    -------
    Interval
        The metric on all rows and its percentile bootstrap interval.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0, 1, 1, 0, 1, 0, 1, 1])
    >>> p = np.array([0.2, 0.9, 0.6, 0.4, 0.8, 0.1, 0.3, 0.7])
    >>> interval = bootstrap_interval("accuracy", y, p, n_resamples=200)
    >>> round(interval.value, 3)
    0.875
    """
    check_resampling(n_resamples, confidence)
    if callable(metric):
        return _callable_interval(metric, y_true, y_pred, n_resamples, confidence, seed)

    data = prepare(y_true, y_pred, task=task, classes=classes)
    point = float(weighted_metric(metric, data, np.ones((1, data.n_rows)))[0])
    distribution = bootstrap_distribution(
        lambda weights: weighted_metric(metric, data, weights),
        data.n_rows,
        n_resamples=n_resamples,
        seed=seed,
    )
    return percentile_interval(point, distribution, confidence)


def _callable_interval(metric, y_true, y_pred, n_resamples, confidence, seed) -> Interval:
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if len(y_true) != len(y_pred):
        raise ConfigError(
            f"y_true has {len(y_true)} rows but y_pred has {len(y_pred)}; pass predictions "
            "for exactly the rows that have true values."
        )
    point = float(metric(y_true, y_pred))
    values = []
    for indices in resample_indices(len(y_true), n_resamples, seed):
        for row in indices:
            try:
                values.append(float(metric(y_true[row], y_pred[row])))
            except ValueError:
                # e.g. a ranking metric on a resample that holds one class only
                values.append(float("nan"))
    return percentile_interval(point, np.asarray(values), confidence)
