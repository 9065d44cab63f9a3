"""Time-aware planning: estimate what a fit costs and start only what can finish in time."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["Budget"]

#: Families whose cross-validation fold models are kept and can serve when a refit would not
#: finish in time (the others store the training data or hundreds of deep trees).
FOLD_FALLBACK = ("lightgbm", "xgboost", "catboost", "linear")

# Relative cost of a family's first configuration compared with the fast LightGBM one, used
# until the family has been measured on this data.
_PRIOR_FACTOR = {
    "lightgbm": 1.0,
    "xgboost": 2.0,
    "catboost": 4.0,
    "linear": 0.5,
    "extra_trees": 1.5,
    "random_forest": 2.5,
    "knn": 0.5,
}


@dataclass
class Budget:
    """The wall-clock plan of one search.

    Parameters
    ----------
    deadline
        ``time.monotonic()`` by which everything, the final refit included, must be done.
    n_workers
        Fits that run at the same time.
    """

    deadline: float
    n_workers: int
    measured: dict[str, list[float]] = field(default_factory=dict)
    #: Per finished candidate: (family, seconds of one fold fit, cross-validation score loss).
    history: list[tuple[str, float, float]] = field(default_factory=list)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def record(self, family: str, candidate_seconds: float, fold_seconds: float, loss: float):
        self.measured.setdefault(family, []).append(candidate_seconds)
        self.history.append((family, fold_seconds, loss))

    def estimate(self, family: str) -> float | None:
        """Expected seconds for a cross-validation of ``family``; ``None`` if nothing is known."""
        if family in self.measured:
            values = sorted(self.measured[family])
            return values[len(values) // 2]
        if "lightgbm" in self.measured:
            return min(self.measured["lightgbm"]) * _PRIOR_FACTOR.get(family, 2.0)
        if self.measured:
            reference = min(min(v) for v in self.measured.values())
            return reference * _PRIOR_FACTOR.get(family, 2.0)
        return None

    def refit_reserve(self, n_rows: int, n_splits: int, top: int = 2) -> float:
        """Seconds to keep for ensemble selection and refitting the likely members.

        The best ``top`` candidates are the likely members; they refit two at a time, so the
        slowest of them sets the time. Families whose fold models can serve instead of a refit
        (boosting, linear) reserve half their refit time: a refit is preferred (one model
        predicts faster than k), but not worth starving the search for.
        """
        best = sorted(self.history, key=lambda item: item[2])[:top]
        growth = n_splits / max(n_splits - 1, 1)
        refits = [
            seconds * growth * 1.15 * (0.5 if family in FOLD_FALLBACK else 1.0)
            for family, seconds, _ in best
        ]
        refit = max(max(refits, default=0.0), sum(refits) / self.n_workers)
        selection = 0.3 + n_rows / 40000
        return refit + selection + 0.3
