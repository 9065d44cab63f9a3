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
        else from the best candidate, and the budget stretches to twice that start's cost.
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

    Returns
    -------
    weights, score
        Candidate index -> weight (summing to 1) and the ensemble's out-of-fold score.
    """
    n = len(predictions)
    losses = [metric.loss(metric.score_encoded(y, p)) for p in predictions]
    best_single = int(np.argmin(losses))
    limit = None
    if costs is not None and budget is not None:
        limit = np.asarray(budget, dtype=float)
        affordable = [i for i in range(n) if np.all(np.asarray(costs[i]) <= limit)]
        cheap = min(affordable, key=lambda i: losses[i]) if affordable else None
        # Prefer the best affordable model when it is as good within the noise of the
        # validation; otherwise accuracy wins and the budget stretches to what it costs.
        allowed = tolerance
        if cheap is not None and fold_losses is not None:
            allowed = min(
                tolerance, _paired_standard_error(fold_losses[cheap], fold_losses[best_single])
            )
        if cheap is not None and losses[cheap] <= losses[best_single] + allowed:
            best_single = cheap
        limit = np.maximum(limit, 2 * np.asarray(costs[best_single], dtype=float))
    if n == 1:
        return {0: 1.0}, metric.score_encoded(y, predictions[0])
    counts = np.zeros(n, dtype=int)
    total = np.zeros_like(predictions[best_single], dtype=float)
    history: list[tuple[float, np.ndarray]] = []
    used_cost = np.zeros(2)
    for round_number in range(max_rounds):
        best_index, best_loss = -1, float("inf")
        for i in range(n):
            if counts[i] == 0 and round_number > 0 and limit is not None:
                # New members only while the whole ensemble stays within the cost budget.
                if np.any(used_cost + np.asarray(costs[i]) > limit):
                    continue
            if round_number == 0 and i != best_single:
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
    best_loss, best_counts = min(history, key=lambda item: item[0])
    weights = {int(i): float(c) / best_counts.sum() for i, c in enumerate(best_counts) if c > 0}
    blended = sum(predictions[i] * w for i, w in weights.items())
    return weights, metric.score_encoded(y, blended)


def _paired_standard_error(a: Sequence[float], b: Sequence[float]) -> float:
    """Standard error of the mean per-fold difference between two candidates."""
    difference = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if difference.size < 2:
        return 0.0
    return float(np.std(difference, ddof=1) / np.sqrt(difference.size))
