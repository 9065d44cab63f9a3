"""Greedy ensemble selection with replacement (Caruana et al., 2004) over out-of-fold
predictions, under a prediction-cost budget so the final model stays fast to serve."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlwright.automl._metrics import Metric

__all__ = ["select_ensemble"]


def select_ensemble(
    predictions: Sequence[np.ndarray],
    y: np.ndarray,
    metric: Metric,
    *,
    costs: Sequence[tuple[float, float]] | None = None,
    budget: tuple[float, float] | None = None,
    max_rounds: int = 50,
    tolerance: float = 0.0,
    fold_losses: Sequence[Sequence[float]] | None = None,
    folds: Sequence[np.ndarray] | None = None,
) -> tuple[dict[int, float], float]:
    """Choose weights for out-of-fold predictions that optimise ``metric``.

    Parameters
    ----------
    predictions
        One out-of-fold prediction per candidate: (n, n_classes) probabilities or (n,) values.
    y
        Encoded targets.
    metric
        The metric to optimise.
    costs, budget
        Per candidate (single-row milliseconds, batch microseconds per row); the sum over the
        distinct members chosen may not exceed ``budget``. The ensemble starts from the best
        candidate within budget if its loss is within ``tolerance`` of the best candidate's,
        else from the best candidate, and the budget stretches to that start's cost. It
        stretches further, to twice that cost, only for an ensemble whose gain is beyond the
        noise of the validation (one paired standard error over ``folds``, at least
        ``tolerance``): speed is not traded for an accuracy gain that may not be real.
    max_rounds
        Number of greedy additions (with replacement).
    tolerance
        Loss difference treated as noise when trading accuracy for prediction cost.
    fold_losses
        Per candidate, its loss on each validation fold (the same folds for all). When given,
        the noise allowed between the cheap and the best candidate is the standard error of
        their paired per-fold difference, at most ``tolerance``: models scored on the same
        rows differ far more precisely than either fold spread suggests, so an unpaired
        spread would trade away real accuracy for speed.
    folds
        Row indices of each validation fold, to judge an ensemble's gain per fold.

    Returns
    -------
    weights, score
        Candidate index -> weight (summing to 1) and the ensemble's out-of-fold score.
    """
    n = len(predictions)
    losses = [metric.loss(metric.score_encoded(y, p)) for p in predictions]
    start = int(np.argmin(losses))
    if costs is None or budget is None:
        counts = _greedy(predictions, y, metric, start, max_rounds, None, None)
        return _weights(predictions, y, metric, counts)
    limit = np.asarray(budget, dtype=float)
    affordable = [i for i in range(n) if np.all(np.asarray(costs[i]) <= limit)]
    cheap = min(affordable, key=lambda i: losses[i]) if affordable else None
    # Prefer the best affordable model when it is as good within the noise of the
    # validation; otherwise accuracy wins and the budget stretches to what it costs.
    allowed = tolerance
    if cheap is not None and fold_losses is not None:
        allowed = min(tolerance, _paired_standard_error(fold_losses[cheap], fold_losses[start]))
    if cheap is not None and losses[cheap] <= losses[start] + allowed:
        start = cheap
    start_cost = np.asarray(costs[start], dtype=float)
    tight = _greedy(predictions, y, metric, start, max_rounds, costs, np.maximum(limit, start_cost))
    wide = _greedy(
        predictions, y, metric, start, max_rounds, costs, np.maximum(limit, 2 * start_cost)
    )
    if np.array_equal(tight, wide):
        return _weights(predictions, y, metric, tight)
    tight_blend, wide_blend = _blend(predictions, tight), _blend(predictions, wide)
    gain = metric.loss(metric.score_encoded(y, tight_blend)) - metric.loss(
        metric.score_encoded(y, wide_blend)
    )
    noise = tolerance
    if folds is not None:
        noise = max(
            noise,
            _paired_standard_error(
                [metric.loss(metric.score_encoded(y[f], wide_blend[f])) for f in folds],
                [metric.loss(metric.score_encoded(y[f], tight_blend[f])) for f in folds],
            ),
        )
    return _weights(predictions, y, metric, wide if gain > noise else tight)


def _greedy(predictions, y, metric, start, max_rounds, costs, limit) -> np.ndarray:
    """Greedy selection with replacement from ``start``; the best prefix's member counts."""
    n = len(predictions)
    counts = np.zeros(n, dtype=int)
    if n == 1:
        counts[0] = 1
        return counts
    total = np.zeros_like(predictions[start], dtype=float)
    history: list[tuple[float, np.ndarray]] = []
    used_cost = np.zeros(2)
    for round_number in range(max_rounds):
        best_index, best_loss = -1, float("inf")
        for i in range(n):
            if counts[i] == 0 and round_number > 0 and limit is not None:
                # New members only while the whole ensemble stays within the cost budget.
                if np.any(used_cost + np.asarray(costs[i]) > limit):
                    continue
            if round_number == 0 and i != start:
                continue
            candidate = (total + predictions[i]) / (round_number + 1)
            loss = metric.loss(metric.score_encoded(y, candidate))
            if loss < best_loss - 1e-12:
                best_index, best_loss = i, loss
        if best_index < 0:
            break
        if counts[best_index] == 0 and limit is not None:
            used_cost += np.asarray(costs[best_index])
        counts[best_index] += 1
        total += predictions[best_index]
        history.append((best_loss, counts.copy()))
    # Keep the best prefix of the greedy path (later additions can only overfit).
    return min(history, key=lambda item: item[0])[1]


def _blend(predictions: Sequence[np.ndarray], counts: np.ndarray) -> np.ndarray:
    return sum(predictions[i] * (c / counts.sum()) for i, c in enumerate(counts) if c > 0)


def _weights(predictions, y, metric, counts) -> tuple[dict[int, float], float]:
    weights = {int(i): float(c) / counts.sum() for i, c in enumerate(counts) if c > 0}
    return weights, metric.score_encoded(y, _blend(predictions, counts))


def _paired_standard_error(a: Sequence[float], b: Sequence[float]) -> float:
    """Standard error of the mean per-fold difference between two candidates."""
    difference = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if difference.size < 2:
        return 0.0
    return float(np.std(difference, ddof=1) / np.sqrt(difference.size))
