"""Time-aware planning: estimate what a fit costs and start only what can finish in time."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["REFIT_MARGIN", "Budget", "refit_seconds"]

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
    "mlp": 4.0,
}
#: A second-layer fit sees a few more columns than the first layer's fit of its family.
_STACK_FACTOR = 1.2


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
    #: Per finished candidate: (family, seconds of one fold fit, cross-validation score loss,
    #: whether its fold models may serve in place of a refit).
    history: list[tuple[str, float, float, bool]] = field(default_factory=list)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def record(
        self,
        family: str,
        candidate_seconds: float,
        fold_seconds: float,
        loss: float,
        *,
        bagged: bool = False,
    ) -> None:
        """Note a finished candidate; ``bagged`` if its fold models may serve without a refit."""
        self.measured.setdefault(family, []).append(candidate_seconds)
        self.history.append((family, fold_seconds, loss, bagged))

    def estimate(self, family: str) -> float | None:
        """Expected seconds for a cross-validation of ``family``; ``None`` if nothing is known.

        ``family@2`` is the family on the second layer: until measured there, 1.2 times its
        first-layer estimate.
        """
        if family.endswith("@2") and family not in self.measured:
            first = self.estimate(family[:-2])
            return None if first is None else _STACK_FACTOR * first
        if family in self.measured:
            values = sorted(self.measured[family])
            return values[len(values) // 2]
        if "lightgbm" in self.measured:
            return min(self.measured["lightgbm"]) * _PRIOR_FACTOR.get(family, 2.0)
        if self.measured:
            reference = min(min(v) for v in self.measured.values())
            return reference * _PRIOR_FACTOR.get(family, 2.0)
        return None

    def refit_reserve(self, n_rows: int, n_splits: int, top: int = 4) -> float:
        """Seconds to keep for ensemble selection and refitting the likely members.

        The best ``top`` candidates are the likely members (a selected ensemble rarely has more
        than four, and on cpu_act the fourth best was the one left without time, served by a
        single fold model). One whose fold models can serve in
        its place (``bagged``: boosting or linear models whose k fold models fit the prediction
        budget) needs no reserve: when the search leaves no time to refit it, the average of its
        fold models serves, which is as accurate as one refit. Reserving half a refit, as this
        did before, kept seconds that were too few to refit and so went unused (5 s of 57 on
        cal_housing). The others refit one core each, on ``k / (k - 1)`` times a fold's rows,
        with the margin :data:`REFIT_MARGIN` that the refit checks against.
        """
        best = sorted(self.history, key=lambda item: item[2])[:top]
        refits = [
            REFIT_MARGIN * refit_seconds(seconds, n_splits, 1, 1)
            for _, seconds, _, bagged in best
            if not bagged
        ]
        refit = max(max(refits, default=0.0), sum(refits) / self.n_workers)
        selection = 0.3 + n_rows / 40000
        return refit + selection + 0.3


#: A refit starts only if its estimate times this margin fits in the time left.
REFIT_MARGIN = 1.15


def refit_seconds(fold_seconds: float, n_splits: int, fold_threads: int, threads: int) -> float:
    """Expected seconds to refit on all rows a model whose folds took ``fold_seconds`` each.

    A refit sees ``k / (k - 1)`` times a fold's rows but, with its number of rounds known,
    skips the validation scoring and the early-stopping patience of a fold fit: measured on
    cal_housing, one-thread refits took 0.65-0.8 of ``growth x fold_seconds``. With more
    threads than the folds had it is faster, though less than linearly (the libraries' thread
    scaling on two cores is about 1.7x).
    """
    growth = n_splits / max(n_splits - 1, 1)
    speedup = (max(threads, 1) / max(fold_threads, 1)) ** 0.75
    return 0.8 * fold_seconds * growth / speedup
