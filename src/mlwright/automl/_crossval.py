"""Cross-validation of candidates: out-of-fold predictions, fold models, repeats, the time plan.

One :class:`CrossValidation` holds the state of a search: the training matrix of each layer
(layer 1: the preprocessed features; layer 2: the same plus the out-of-fold predictions of the
first layer's stack inputs), the folds, every finished candidate and the leaderboard. A
candidate is cross-validated with k folds, two fits at a time on two cores; on small data it
can be cross-validated again on new folds (repeated k-fold bagging), which averages its
out-of-fold predictions over the repeats and adds k fold models to its bag.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

from mlwright.automl._metrics import Metric
from mlwright.automl._portfolio import Candidate
from mlwright.automl._scheduler import FOLD_FALLBACK, Budget
from mlwright.automl.families import family

__all__ = ["CrossValidation", "Evaluated", "make_folds", "n_splits"]

#: Families that a deadline cuts short into a smaller, still useful model (boosting rounds,
#: forest trees, network epochs): they may start when only part of their estimate fits.
CUT_SHORT = ("random_forest", "extra_trees")
#: In the last phase, the least time worth starting a deadline-cut candidate for.
_FILL_SECONDS = 1.0


@dataclass
class Evaluated:
    """A cross-validated candidate.

    ``oof`` holds its out-of-fold predictions (averaged over ``repeats`` cross-validations on
    different folds), ``fold_scores`` its score on each canonical fold, ``fold_models`` the
    models of every fold of every repeat (for the families whose fold models may serve).
    """

    candidate: Candidate
    oof: np.ndarray
    score: float
    fold_scores: list[float]
    iterations: list[int]
    fold_seconds: float
    seconds: float
    latency_ms: float
    us_per_row: float
    fold_models: list[Any] | None
    repeats: int = 1

    @property
    def cost(self) -> np.ndarray:
        """Prediction cost of one model: (single-row ms, batch us per row)."""
        return np.asarray([self.latency_ms, self.us_per_row], dtype=float)

    @property
    def layer(self) -> int:
        return self.candidate.layer


def n_splits(n_rows: int, seconds_left: float, n_jobs: int) -> int:
    """Folds of the cross-validation: a whole number of rounds of ``n_jobs`` parallel fits.

    Five folds on small data (tighter estimates, more rows per fit), four on large data, three
    when the budget is short (more configurations rather than tighter estimates). Rounded up to
    a multiple of the parallel fits: every candidate waits for its slowest fold, so with five
    folds on two cores the fifth fit ran alone while the other core idled, a sixth of the
    search. Six folds take the same three rounds and train each fit on more rows.
    """
    wanted = 5 if n_rows <= 10000 else 4
    if seconds_left < 20:
        wanted = 3
    workers = max(1, min(int(n_jobs), wanted))
    return min(10, math.ceil(wanted / workers) * workers)


def make_folds(y: np.ndarray, task: str, n_splits: int, seed: int):
    """``(train, valid)`` index pairs; stratified for classification when every class can be."""
    if task != "regression":
        smallest = int(np.bincount(y).min())
        if smallest >= 2:
            splitter = StratifiedKFold(min(n_splits, smallest), shuffle=True, random_state=seed)
            return list(splitter.split(np.zeros(len(y)), y))
    splitter = KFold(n_splits, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y))))


class CrossValidation:
    """The state of one search: data, folds, finished candidates, leaderboard, time plan.

    Parameters
    ----------
    X, y
        The layer-1 training matrix and encoded targets.
    task, n_classes
        The task and its number of classes (0 for regression).
    categorical
        Positions of categorical codes in ``X`` (the same in every layer).
    metric
        What the search optimises.
    folds
        The canonical ``(train, valid)`` folds: fold scores and every layer use them.
    budget
        The wall-clock plan (:class:`~mlwright.automl._scheduler.Budget`).
    seed, n_jobs
        Seed of the fits, and the cores to use.
    progress
        Receives the progress events.
    start
        ``time.monotonic()`` when the search began.
    search_deadline_fn
        When candidates must be done (the deadline minus the refit reserve).
    cost_budget
        The ensemble's prediction-cost budget (single-row ms, batch us per row).
    """

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        task: str,
        n_classes: int,
        categorical: list[int],
        metric: Metric,
        folds: list[tuple[np.ndarray, np.ndarray]],
        budget: Budget,
        seed: int,
        n_jobs: int,
        progress: Callable[[dict[str, Any]], None] | None,
        start: float,
        search_deadline_fn: Callable[[], float],
        cost_budget: tuple[float, float],
    ) -> None:
        self.X, self.y, self.task, self.n_classes = X, y, task, n_classes
        #: Training matrix of each layer (layer 2 is added when the stack is built).
        self.designs: dict[int, np.ndarray] = {1: X}
        self.cost_budget = cost_budget
        self.categorical = categorical
        self.metric = metric
        self.folds = folds
        self.budget = budget
        self.seed = seed
        self.n_workers = max(1, min(n_jobs, len(folds)))
        self.threads_per_fit = max(1, n_jobs // self.n_workers)
        self.progress = progress
        self.start = start
        self.search_deadline = search_deadline_fn
        #: A phase's own end (``None``: the search deadline); candidates plan against the
        #: earlier of the two.
        self.phase_deadline: float | None = None
        self.results: list[Evaluated] = []
        self.leaderboard: list[dict[str, Any]] = []
        self.pool = ThreadPoolExecutor(self.n_workers)

    def emit(self, event: dict[str, Any]) -> None:
        if self.progress is not None:
            event.setdefault("elapsed", time.monotonic() - self.start)
            event.setdefault("budget", self.budget.deadline - self.start)
            self.progress(event)

    def best(self, layer: int | None = None) -> Evaluated | None:
        """The best finished candidate (of one layer, when given)."""
        pool = [r for r in self.results if layer is None or r.layer == layer]
        if not pool:
            return None
        return min(pool, key=lambda r: self.metric.loss(r.score))

    def deadline(self) -> float:
        """When the current phase's candidates must be done."""
        end = self.search_deadline()
        return end if self.phase_deadline is None else min(end, self.phase_deadline)

    def _fit_fold(self, module, candidate, folds, fold_index, per_fit_seconds, seed):
        train_index, valid_index = folds[fold_index]
        design = self.designs[candidate.layer]
        began = time.monotonic()
        deadline = began + per_fit_seconds
        if self.results:  # the first model may overrun; the others stop at the search deadline
            deadline = min(self.search_deadline(), deadline)
        model, iterations = module.fit(
            design[train_index],
            self.y[train_index],
            task=self.task,
            n_classes=self.n_classes,
            categorical=self.categorical,
            params=candidate.params,
            seed=seed,
            n_threads=self.threads_per_fit,
            deadline=deadline,
            X_val=design[valid_index],
            y_val=self.y[valid_index],
        )
        seconds = time.monotonic() - began
        prediction = module.predict(model, design[valid_index], task=self.task)
        return model, iterations, prediction, seconds

    def _cross_validate(self, candidate: Candidate, folds, cap_seconds: float, seed: int):
        """Fit every fold (two at a time); the fold outputs, in fold order."""
        module = family(candidate.family)
        rounds = math.ceil(len(folds) / self.n_workers)
        per_fit = max(cap_seconds / rounds, 0.05)
        futures = [
            self.pool.submit(self._fit_fold, module, candidate, folds, i, per_fit, seed + i)
            for i in range(len(folds))
        ]
        return [future.result() for future in futures]

    def _entry(self, candidate: Candidate) -> dict[str, Any]:
        return {
            "model": candidate.name,
            "family": candidate.family,
            "params": dict(candidate.params),
            "source": candidate.source,
            "layer": candidate.layer,
        }

    def _failed(self, candidate: Candidate, err: Exception, began: float) -> None:
        entry = self._entry(candidate)
        entry.update(
            status=f"failed: {type(err).__name__}: {err}".splitlines()[0][:300],
            score=None,
            std=None,
            fit_seconds=time.monotonic() - began,
            traceback=traceback.format_exc(limit=3),
        )
        self.leaderboard.append(entry)
        self.emit(
            {
                "kind": "candidate",
                "name": candidate.name,
                "family": candidate.family,
                "score": None,
                "status": entry["status"],
            }
        )

    def _fold_scores(self, oof: np.ndarray) -> list[float]:
        return [self.metric.score_encoded(self.y[valid], oof[valid]) for _, valid in self.folds]

    def evaluate(self, candidate: Candidate, cap_seconds: float) -> Evaluated | None:
        """Cross-validate a candidate on the canonical folds; ``None`` if it failed."""
        module = family(candidate.family)
        began = time.monotonic()
        try:
            outputs = self._cross_validate(candidate, self.folds, cap_seconds, self.seed)
        except Exception as err:  # a failing configuration must not end the search
            self._failed(candidate, err, began)
            return None
        seconds = time.monotonic() - began
        shape = (len(self.y), self.n_classes) if self.task != "regression" else (len(self.y),)
        oof = np.zeros(shape)
        for (_, valid_index), output in zip(self.folds, outputs, strict=True):
            oof[valid_index] = np.asarray(output[2], dtype=float)
        fold_scores = self._fold_scores(oof)
        score = self.metric.score_encoded(self.y, oof)
        result = Evaluated(
            candidate=candidate,
            oof=oof,
            score=score,
            fold_scores=fold_scores,
            iterations=[int(o[1]) for o in outputs],
            fold_seconds=float(np.mean([o[3] for o in outputs])),
            seconds=seconds,
            latency_ms=0.0,
            us_per_row=0.0,
            fold_models=[o[0] for o in outputs] if candidate.family in FOLD_FALLBACK else None,
        )
        # Prediction cost from the model's structure (trees, depth, features), not from a
        # timing: the machine may be busy, and the ensemble chosen must not depend on load.
        result.latency_ms, result.us_per_row = module.cost(
            int(round(np.mean(result.iterations) * 1.1)),
            candidate.params,
            self.n_classes if self.task == "multiclass" else 1,
            len(self.y),
            n_features=self.designs[candidate.layer].shape[1],
            n_categorical=len(self.categorical),
        )
        self.budget.record(
            self._budget_key(candidate),
            seconds,
            result.fold_seconds,
            self.metric.loss(score),
            bagged=self.bag_affordable(result),
        )
        entry = self._entry(candidate)
        entry.update(
            status="ok",
            score=score,
            std=float(np.std(fold_scores)),
            fold_scores=fold_scores,
            fit_seconds=seconds,
            iterations=result.iterations,
            latency_ms=result.latency_ms,
            us_per_row=result.us_per_row,
        )
        self.leaderboard.append(entry)
        if np.isfinite(score):
            self.results.append(result)
        best = self.best()
        self.emit(
            {
                "kind": "candidate",
                "name": candidate.name,
                "family": candidate.family,
                "score": score,
                "std": entry["std"],
                "status": "ok",
                "fit_seconds": seconds,
                "best_score": best.score if best else None,
                "best_model": best.candidate.name if best else None,
            }
        )
        return result

    def repeat(self, result: Evaluated, folds, cap_seconds: float, repeat_index: int) -> bool:
        """Cross-validate ``result``'s candidate again on other folds (repeated k-fold bagging).

        Its out-of-fold predictions become the mean over the repeats (each row is still
        predicted only by models that did not see it), its score and fold scores are
        recomputed from them, and the new fold models join its bag. Returns whether the
        repeat completed.
        """
        candidate = result.candidate
        began = time.monotonic()
        try:
            outputs = self._cross_validate(
                candidate, folds, cap_seconds, self.seed + 1000 * repeat_index
            )
        except Exception:  # noqa: BLE001 - the candidate keeps its earlier repeats
            return False
        oof = np.zeros_like(result.oof)
        for (_, valid_index), output in zip(folds, outputs, strict=True):
            oof[valid_index] = np.asarray(output[2], dtype=float)
        result.oof = (result.oof * result.repeats + oof) / (result.repeats + 1)
        result.repeats += 1
        result.score = self.metric.score_encoded(self.y, result.oof)
        result.fold_scores = self._fold_scores(result.oof)
        result.iterations += [int(o[1]) for o in outputs]
        result.seconds += time.monotonic() - began
        if result.fold_models is not None:
            result.fold_models += [o[0] for o in outputs]
        for entry in self.leaderboard:
            if entry["model"] == candidate.name and entry.get("status") == "ok":
                entry.update(
                    score=result.score,
                    std=float(np.std(result.fold_scores)),
                    fold_scores=result.fold_scores,
                    fit_seconds=result.seconds,
                    repeats=result.repeats,
                )
        return True

    @staticmethod
    def _budget_key(candidate: Candidate) -> str:
        """Timings are kept per family and layer (a second-layer fit sees more columns)."""
        return candidate.family if candidate.layer == 1 else f"{candidate.family}@2"

    def bag_affordable(self, result: Evaluated) -> bool:
        """Whether the average of the result's fold models may serve in place of a refit.

        Its k fold models may cost up to half the prediction budget, so that two such members
        fit in it together; the refit reserve keeps no time for such a member.
        """
        if result.fold_models is None:
            return False
        cost = result.cost * len(result.fold_models)
        return bool(np.all(cost <= 0.5 * np.asarray(self.cost_budget)))

    def plan(self, candidate: Candidate, *, fill: bool = False) -> float | None:
        """Seconds the candidate may use, or ``None`` to skip it for lack of time.

        With ``fill`` (the search's last phase, when nothing else is left to do) a family that
        a deadline cuts short starts whenever a second is left: a smaller model beats idle
        cores, and the ensemble only takes it if it helps.
        """
        remaining = self.deadline() - time.monotonic()
        if not self.results:
            # The first model always runs, however late: a model a little past the budget
            # beats no model (its fits stop early at their deadline).
            return max(self.search_deadline() - time.monotonic(), 1.0)
        if remaining <= 0.05:
            return None
        estimate = self.budget.estimate(self._budget_key(candidate))
        if estimate is None:
            return remaining
        iterative = family(candidate.family).ITERATIVE or candidate.family in CUT_SHORT
        if iterative:
            # A deadline cuts boosting and forests short, so a model that would need somewhat
            # more than what is left still yields a useful (smaller) one; no single candidate
            # may take more than about half of what is left.
            if fill and remaining >= _FILL_SECONDS:
                return remaining
            if estimate * 0.4 > remaining:
                return None
            return min(0.5 * remaining, max(2.0 * estimate, 0.25 * remaining))
        return remaining if estimate * 1.2 < remaining else None

    def skip(self, candidate: Candidate, reason: str) -> None:
        entry = self._entry(candidate)
        entry.update(status=f"skipped: {reason}", score=None, std=None, fit_seconds=0.0)
        self.leaderboard.append(entry)
        self.emit(
            {
                "kind": "candidate",
                "name": candidate.name,
                "family": candidate.family,
                "score": None,
                "status": f"skipped: {reason}",
            }
        )
