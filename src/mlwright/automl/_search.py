"""The AutoML search: cross-validate a portfolio, tune with Optuna, select an ensemble, refit.

Plan of one search, all inside the caller's deadline:

1. preprocess from the schema (and quality findings) into one numeric matrix;
2. k-fold cross-validation (stratified for classification) of the portfolio's configurations,
   two fits at a time, early stopping on each validation fold, keeping out-of-fold predictions;
   the scheduler starts a configuration only if its estimated cost fits in what is left after
   the refit reserve, and gives every fit a deadline so nothing overruns;
3. Optuna TPE tuning of the best gradient-boosting families with the time that remains;
4. greedy ensemble selection over the out-of-fold predictions, within a prediction-cost budget;
5. each ensemble member refitted on all the data (or its fold models kept when time is short).
"""

from __future__ import annotations

import math
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlwright.automl._ensemble import select_ensemble
from mlwright.automl._metrics import Metric, default_metric, get_metric, sort_labels
from mlwright.automl._portfolio import Candidate, portfolio
from mlwright.automl._predictor import Member, Predictor
from mlwright.automl._preprocess import Preprocessor, category_key
from mlwright.automl._scheduler import FOLD_FALLBACK, REFIT_MARGIN, Budget, refit_seconds
from mlwright.automl.families import FAMILY_NAMES, family
from mlwright.errors import ConfigError, DataError

__all__ = ["SearchResult", "search"]

DEFAULT_TIME_LIMIT = 60.0
#: Gradient-boosting families Optuna tunes (the others are kept at their portfolio settings).
_TUNABLE = ("lightgbm", "xgboost", "catboost")
#: Prediction-cost budget of the ensemble (single-row milliseconds, batch microseconds of one
#: core per row and model output): about 2.5 ms a row and 100,000 rows/s on two cores with
#: preprocessing and schema validation included. Calibrated end to end on adult: an XGBoost
#: model costing 14.6 us a row on one core predicted 114,000 rows/s through ``Model.predict``
#: on two (benchmarks/prediction_cost.py measures each family's cost).
_COST_BUDGET = (2.5, 16.0)


@dataclass
class SearchResult:
    """What a search produced.

    Attributes
    ----------
    predictor
        The fitted, picklable :class:`~mlwright.automl._predictor.Predictor`.
    metric
        Name of the metric optimised.
    greater_is_better
        Whether larger scores are better.
    validation_score, validation_std, fold_scores
        The ensemble's out-of-fold score, its spread over folds, and the per-fold scores.
    leaderboard
        Every candidate: model, family, params, score, std, fit_seconds, status, weight.
    ensemble
        ``(model name, weight)`` pairs of the final ensemble.
    settings
        Task, metric, seed, folds, budget and the other settings used.
    timings
        Seconds spent per phase.
    """

    predictor: Predictor
    metric: str
    greater_is_better: bool
    validation_score: float
    validation_std: float
    fold_scores: list[float]
    leaderboard: list[dict[str, Any]]
    ensemble: list[tuple[str, float]]
    settings: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _Evaluated:
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


def _resolve_task(schema: Any, y: pd.Series) -> str:
    task = getattr(schema, "task", None)
    if task in ("binary", "multiclass", "regression"):
        return task
    distinct = y.nunique(dropna=True)
    if distinct == 2:
        return "binary"
    if pd.api.types.is_numeric_dtype(y.dtype) and distinct > 20:
        return "regression"
    return "multiclass"


def _encode_target(y: pd.Series, task: str, schema: Any, target: str):
    if task == "regression":
        values = pd.to_numeric(y, errors="coerce")
        bad = values.isna() & y.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"Target column {target!r} is a regression target but has the non-numeric "
                f"value {y.iloc[row]!r} (row {row + 1}). Clean the column or choose a "
                "classification task."
            )
        return values.to_numpy(dtype=float), None
    labels = list(y.tolist())
    observed = sort_labels(labels)
    declared = getattr(schema, "class_labels", None)
    classes = list(declared) if declared else observed
    by_key = {category_key(c): i for i, c in enumerate(classes)}
    missing = [v for v in observed if category_key(v) not in by_key]
    if missing:
        classes = sort_labels([*classes, *missing])
        by_key = {category_key(c): i for i, c in enumerate(classes)}
    encoded = np.array([by_key[category_key(v)] for v in labels], dtype=np.int64)
    present = np.unique(encoded)
    if len(present) < 2:
        raise DataError(
            f"Target column {target!r} has a single class ({classes[present[0]]!r}) in the "
            "training data; classification needs at least two. Check the target column."
        )
    if len(present) < len(classes):
        classes = [classes[i] for i in present]
        remap = {old: new for new, old in enumerate(present)}
        encoded = np.array([remap[v] for v in encoded], dtype=np.int64)
    return encoded, classes


def _n_splits(n_rows: int, seconds_left: float, n_jobs: int) -> int:
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


def _folds(y: np.ndarray, task: str, n_splits: int, seed: int):
    from sklearn.model_selection import KFold, StratifiedKFold

    if task != "regression":
        smallest = int(np.bincount(y).min())
        if smallest >= 2:
            splitter = StratifiedKFold(min(n_splits, smallest), shuffle=True, random_state=seed)
            return list(splitter.split(np.zeros(len(y)), y))
    splitter = KFold(n_splits, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y))))


def _parse_models(models: Any) -> list[str]:
    if models is None:
        return list(FAMILY_NAMES)
    names = models.split(",") if isinstance(models, str) else list(models)
    names = [str(name).strip().lower().replace("-", "_") for name in names if str(name).strip()]
    aliases = {
        "lgbm": "lightgbm",
        "xgb": "xgboost",
        "cat": "catboost",
        "rf": "random_forest",
        "et": "extra_trees",
        "logistic": "linear",
        "ridge": "linear",
    }
    names = [aliases.get(name, name) for name in names]
    unknown = [name for name in names if name not in FAMILY_NAMES]
    if unknown or not names:
        raise ConfigError(
            f"Unknown model family {', '.join(map(repr, unknown)) or '(none given)'} in models; "
            f"choose from {', '.join(FAMILY_NAMES)} (comma-separated)."
        )
    return list(dict.fromkeys(names))


class _Search:
    def __init__(
        self,
        X,
        y,
        task,
        n_classes,
        categorical,
        metric,
        folds,
        budget,
        seed,
        n_jobs,
        progress,
        start,
        search_deadline_fn,
        cost_budget,
    ):
        self.X, self.y, self.task, self.n_classes = X, y, task, n_classes
        self.cost_budget = cost_budget
        self.categorical = categorical
        self.metric: Metric = metric
        self.folds = folds
        self.budget: Budget = budget
        self.seed = seed
        self.n_workers = max(1, min(n_jobs, len(folds)))
        self.threads_per_fit = max(1, n_jobs // self.n_workers)
        self.progress = progress
        self.start = start
        self.search_deadline = search_deadline_fn
        self.results: list[_Evaluated] = []
        self.leaderboard: list[dict[str, Any]] = []
        self.pool = ThreadPoolExecutor(self.n_workers)

    def emit(self, event: dict[str, Any]) -> None:
        if self.progress is not None:
            event.setdefault("elapsed", time.monotonic() - self.start)
            event.setdefault("budget", self.budget.deadline - self.start)
            self.progress(event)

    def best(self) -> _Evaluated | None:
        if not self.results:
            return None
        return min(self.results, key=lambda r: self.metric.loss(r.score))

    def _fit_fold(self, module, candidate, fold_index, per_fit_seconds):
        train_index, valid_index = self.folds[fold_index]
        began = time.monotonic()
        deadline = began + per_fit_seconds
        if self.results:  # the first model may overrun; the others stop at the search deadline
            deadline = min(self.search_deadline(), deadline)
        model, iterations = module.fit(
            self.X[train_index],
            self.y[train_index],
            task=self.task,
            n_classes=self.n_classes,
            categorical=self.categorical,
            params=candidate.params,
            seed=self.seed + fold_index,
            n_threads=self.threads_per_fit,
            deadline=deadline,
            X_val=self.X[valid_index],
            y_val=self.y[valid_index],
        )
        seconds = time.monotonic() - began
        prediction = module.predict(model, self.X[valid_index], task=self.task)
        return model, iterations, prediction, seconds

    def evaluate(self, candidate: Candidate, cap_seconds: float) -> _Evaluated | None:
        module = family(candidate.family)
        rounds = math.ceil(len(self.folds) / self.n_workers)
        per_fit = max(cap_seconds / rounds, 0.05)
        began = time.monotonic()
        entry = {
            "model": candidate.name,
            "family": candidate.family,
            "params": dict(candidate.params),
            "source": candidate.source,
        }
        try:
            futures = [
                self.pool.submit(self._fit_fold, module, candidate, i, per_fit)
                for i in range(len(self.folds))
            ]
            outputs = [future.result() for future in futures]
        except Exception as err:  # a failing configuration must not end the search
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
            return None
        seconds = time.monotonic() - began
        shape = (len(self.y), self.n_classes) if self.task != "regression" else (len(self.y),)
        oof = np.zeros(shape)
        fold_scores = []
        for (_, valid_index), output in zip(self.folds, outputs, strict=True):
            prediction = np.asarray(output[2], dtype=float)
            oof[valid_index] = prediction
            fold_scores.append(self.metric.score_encoded(self.y[valid_index], prediction))
        score = self.metric.score_encoded(self.y, oof)
        result = _Evaluated(
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
            n_features=self.X.shape[1],
            n_categorical=len(self.categorical),
        )
        self.budget.record(
            candidate.family,
            seconds,
            result.fold_seconds,
            self.metric.loss(score),
            bagged=self.bag_affordable(result),
        )
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

    def bag_affordable(self, result: _Evaluated) -> bool:
        """Whether the average of the result's fold models may serve in place of a refit.

        Its k fold models may cost up to half the prediction budget, so that two such members
        fit in it together; the refit reserve keeps no time for such a member.
        """
        if result.fold_models is None:
            return False
        cost = np.asarray([result.latency_ms, result.us_per_row]) * len(result.fold_models)
        return bool(np.all(cost <= 0.5 * np.asarray(self.cost_budget)))

    def plan(self, candidate: Candidate) -> float | None:
        """Seconds the candidate may use, or ``None`` to skip it for lack of time."""
        remaining = self.search_deadline() - time.monotonic()
        if not self.results:
            # The first model always runs, however late: a model a little past the budget
            # beats no model (its fits stop early at their deadline).
            return max(remaining, 1.0)
        if remaining <= 0.05:
            return None
        estimate = self.budget.estimate(candidate.family)
        if estimate is None:
            return remaining
        iterative = family(candidate.family).ITERATIVE or candidate.family in (
            "random_forest",
            "extra_trees",
        )
        if iterative:
            # A deadline cuts boosting and forests short, so a model that would need somewhat
            # more than what is left still yields a useful (smaller) one; no single candidate
            # may take more than about half of what is left.
            if estimate * 0.4 > remaining:
                return None
            return min(0.5 * remaining, max(2.0 * estimate, 0.25 * remaining))
        return remaining if estimate * 1.2 < remaining else None

    def skip(self, candidate: Candidate, reason: str) -> None:
        self.leaderboard.append(
            {
                "model": candidate.name,
                "family": candidate.family,
                "params": dict(candidate.params),
                "source": candidate.source,
                "status": f"skipped: {reason}",
                "score": None,
                "std": None,
                "fit_seconds": 0.0,
            }
        )
        self.emit(
            {
                "kind": "candidate",
                "name": candidate.name,
                "family": candidate.family,
                "score": None,
                "status": f"skipped: {reason}",
            }
        )


def _unique_name(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    i = 2
    while f"{name}_{i}" in taken:
        i += 1
    return f"{name}_{i}"


def search(
    frame: pd.DataFrame,
    schema: Any,
    *,
    metric: str | Metric | None = None,
    time_limit: float | None = None,
    deadline: float | None = None,
    seed: int = 0,
    max_trials: int | None = None,
    models: Any = None,
    n_jobs: int = 2,
    progress: Callable[[dict[str, Any]], None] | None = None,
    findings: Any = None,
) -> SearchResult:
    """Search for the most accurate model the time budget allows.

    Parameters
    ----------
    frame
        Training data including the target column.
    schema
        The data's :class:`mlwright.data.Schema` (target, task, class labels, column types).
    metric
        Metric name (or :class:`Metric`) to optimise; defaults by task (ROC AUC, log loss,
        RMSE).
    time_limit
        Seconds for the whole search, the final refit included (default 60 unless
        ``max_trials`` is given).
    deadline
        ``time.monotonic()`` value by which to return; takes precedence over ``time_limit``.
    seed
        Seed of folds, models and the tuner; with ``max_trials`` two runs give the same model.
    max_trials
        Cross-validate at most this many configurations.
    models
        Restrict to these families (list or comma-separated string), e.g. ``"lightgbm"``.
    n_jobs
        Cores to use (two fits at a time on two cores).
    progress
        Called with event dicts (``kind`` = ``"start"``, ``"candidate"``, ``"ensemble"``,
        ``"refit"``, ``"done"``) as the search advances.
    findings
        Quality-check findings; columns flagged as identifier, constant or target leakage
        are dropped.

    Returns
    -------
    SearchResult

    Raises
    ------
    ConfigError
        Unknown metric or model family, or an impossible budget.
    DataError
        The target is missing or unusable.
    """
    start = time.monotonic()
    if deadline is None:
        if time_limit is None and max_trials is not None:
            deadline = math.inf
        else:
            limit = DEFAULT_TIME_LIMIT if time_limit is None else float(time_limit)
            if limit <= 0:
                raise ConfigError(f"time_limit must be positive seconds; got {time_limit!r}.")
            deadline = start + limit
    if max_trials is not None and int(max_trials) < 1:
        raise ConfigError(f"max_trials must be at least 1; got {max_trials!r}.")
    families = _parse_models(models)
    target = getattr(schema, "target", None)
    if not target:
        raise ConfigError("The schema names no target column; infer it with a target.")
    if target not in frame.columns:
        raise DataError(
            f"Target column {target!r} is not in the data (columns: "
            f"{', '.join(map(repr, list(frame.columns)[:20]))}). Check the --target name."
        )
    with warnings.catch_warnings():
        # Library chatter (convergence, feature names) must not reach the user or fail tests.
        warnings.simplefilter("ignore")
        return _search(
            frame,
            schema,
            target,
            metric,
            deadline,
            start,
            seed,
            max_trials,
            families,
            n_jobs,
            progress,
            findings,
        )


def _search(
    frame,
    schema,
    target,
    metric,
    deadline,
    start,
    seed,
    max_trials,
    families,
    n_jobs,
    progress,
    findings,
) -> SearchResult:
    timings: dict[str, float] = {}
    labelled = frame[frame[target].notna()]
    if len(labelled) < 10:
        raise DataError(
            f"Only {len(labelled)} rows have a value in target column {target!r}; training "
            "needs at least 10 labelled rows."
        )
    task = _resolve_task(schema, labelled[target])
    y, classes = _encode_target(labelled[target], task, schema, target)
    if task == "binary" and classes is not None and len(classes) > 2:
        task = "multiclass"
    if isinstance(metric, Metric):
        chosen = metric
    else:
        chosen = default_metric(task) if metric is None else get_metric(metric, task)
    n_classes = len(classes) if classes is not None else 0

    preprocessor = Preprocessor(schema, findings, seed).fit(labelled, target)
    X = preprocessor.transform(labelled.drop(columns=[target]))
    timings["preprocess"] = time.monotonic() - start

    n_rows = len(y)
    folds = _folds(y, task, _n_splits(n_rows, deadline - time.monotonic(), n_jobs), seed)
    budget = Budget(deadline=deadline, n_workers=max(1, min(n_jobs, len(folds))))
    outputs = n_classes if task == "multiclass" else 1
    cost_budget = (_COST_BUDGET[0], _COST_BUDGET[1] * outputs)

    def search_deadline() -> float:
        return deadline - budget.refit_reserve(n_rows, len(folds))

    state = _Search(
        X,
        y,
        task,
        n_classes,
        preprocessor.categorical_,
        chosen,
        folds,
        budget,
        seed,
        n_jobs,
        progress,
        start,
        search_deadline,
        cost_budget,
    )
    state.emit(
        {
            "kind": "start",
            "task": task,
            "metric": chosen.name,
            "rows": n_rows,
            "features": X.shape[1],
            "folds": len(folds),
        }
    )
    trials = 0
    taken: set[str] = set()
    try:
        queue = [c for c in portfolio(task, n_rows, X.shape[1]) if c.family in families]
        if n_rows * X.shape[1] > 3_000_000:
            queue = [c for c in queue if c.family != "knn"]  # neighbour search would dominate
        for candidate in queue:
            if max_trials is not None and trials >= max_trials:
                break
            candidate.name = _unique_name(candidate.name, taken)
            taken.add(candidate.name)
            cap = state.plan(candidate)
            if cap is None:
                state.skip(candidate, "not enough time left")
                continue
            trials += 1
            state.evaluate(candidate, cap)
        trials = _tune(state, families, trials, max_trials, taken, seed, n_rows)
        timings["search"] = time.monotonic() - start - timings["preprocess"]

        if not state.results:
            raise ConfigError(
                "No model could be trained within the time limit (every configuration failed "
                "or had no time). Raise --time-limit; the leaderboard lists each attempt: "
                + "; ".join(f"{e['model']}: {e['status']}" for e in state.leaderboard[:5])
            )
        began = time.monotonic()
        ranked = _ensemble_library(state.results, chosen)
        weights, ensemble_score = select_ensemble(
            [r.oof for r in ranked],
            y,
            chosen,
            costs=[(r.latency_ms, r.us_per_row) for r in ranked],
            budget=cost_budget,
            max_rounds=40 if n_rows < 20000 else 25,
            # At most one standard error of the best model's fold scores; between two models
            # the paired per-fold difference decides what counts as noise.
            tolerance=max(
                float(np.std(ranked[0].fold_scores)) / math.sqrt(len(folds)),
                0.002 * abs(ranked[0].score),
            ),
            fold_losses=[[chosen.loss(s) for s in r.fold_scores] for r in ranked],
            folds=[valid for _, valid in folds],
        )
        members = [(ranked[i], w) for i, w in weights.items()]
        blended = sum(ranked[i].oof * w for i, w in weights.items())
        fold_scores = [chosen.score_encoded(y[v], blended[v]) for _, v in folds]
        timings["ensemble"] = time.monotonic() - began
        state.emit(
            {
                "kind": "ensemble",
                "score": ensemble_score,
                "members": [(r.candidate.name, w) for r, w in members],
            }
        )

        began = time.monotonic()
        fitted = _refit(state, members, deadline, n_jobs, cost_budget)
        timings["refit"] = time.monotonic() - began
    finally:
        state.pool.shutdown(wait=True)

    predictor = Predictor(preprocessor, task, classes, fitted, n_jobs=max(1, n_jobs))
    in_ensemble = {m.name: m for m in fitted}
    for entry in state.leaderboard:
        member = in_ensemble.get(entry["model"])
        entry["weight"] = member.weight if member is not None else 0.0
        entry["in_ensemble"] = member is not None
        if member is not None:
            entry["served_as"] = member.served_as
    timings["total"] = time.monotonic() - start
    state.emit({"kind": "done", "score": ensemble_score, "elapsed": timings["total"]})
    return SearchResult(
        predictor=predictor,
        metric=chosen.name,
        greater_is_better=chosen.greater_is_better,
        validation_score=float(ensemble_score),
        validation_std=float(np.std(fold_scores)),
        fold_scores=[float(s) for s in fold_scores],
        leaderboard=state.leaderboard,
        ensemble=[(m.name, m.weight) for m in fitted],
        settings={
            "task": task,
            "metric": chosen.name,
            "seed": seed,
            "folds": len(folds),
            "n_jobs": n_jobs,
            "max_trials": max_trials,
            "models": families,
            "rows": n_rows,
            "features": X.shape[1],
            "time_limit": None if math.isinf(deadline) else round(deadline - start, 3),
            "trials": trials,
            "classes": classes,
        },
        timings={k: round(v, 3) for k, v in timings.items()},
    )


def _tune(state: _Search, families, trials, max_trials, taken, seed, n_rows) -> int:
    """Optuna TPE on the best gradient-boosting families until time or trials run out."""
    tunable = [f for f in _TUNABLE if f in families]
    if not tunable or not state.results:
        return trials
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    best_by_family: dict[str, float] = {}
    for result in state.results:
        fam = result.candidate.family
        if fam in tunable:
            loss = state.metric.loss(result.score)
            best_by_family[fam] = min(best_by_family.get(fam, math.inf), loss)
    if not best_by_family:
        return trials
    order = sorted(best_by_family, key=best_by_family.get)[:2]
    studies = {
        fam: optuna.create_study(
            direction="minimize",
            sampler=optuna.samplers.TPESampler(
                seed=seed + i, n_startup_trials=6, multivariate=True
            ),
        )
        for i, fam in enumerate(order)
    }
    turn = 0
    failures = 0
    while max_trials is None or trials < max_trials:
        # The leading family gets two trials for each one of the runner-up.
        fam = order[0] if len(order) == 1 or turn % 3 != 2 else order[1]
        turn += 1
        study = studies[fam]
        trial = study.ask()
        params = family(fam).suggest(trial, state.task, n_rows)
        name = _unique_name(f"{fam}_tuned", taken)
        taken.add(name)
        candidate = Candidate(name, fam, params, source="optuna")
        cap = state.plan(candidate)
        if cap is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            break
        trials += 1
        result = state.evaluate(candidate, cap)
        if result is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            failures += 1
            if failures >= 5:
                break
        else:
            study.tell(trial, state.metric.loss(result.score))
    return trials


def _ensemble_library(results: list[_Evaluated], metric: Metric, top: int = 15) -> list:
    """Candidates for ensemble selection: the ``top`` best, plus the best of every family.

    After tuning, the best fifteen are often variants of one family (on credit-g, fifteen
    CatBoost trials), while a blend gains most from models that err differently: a linear model
    whose out-of-fold score ranks 30th can still earn weight.
    """
    ordered = sorted(results, key=lambda r: metric.loss(r.score))
    library = ordered[:top]
    for result in ordered[top:]:
        if all(r.candidate.family != result.candidate.family for r in library):
            library.append(result)
    return library


def _refit(state: _Search, members, deadline: float, n_jobs: int, cost_budget) -> list[Member]:
    """Refit each member on all rows in parallel; fall back to fold models if time is short.

    The longest refits start first, so that the one most at risk gets the most time. A member
    without time for its refit serves as the average of as many of its fold models as the
    prediction budget affords (all k when it can; a single fold model, trained on fewer rows,
    is the last resort).
    """
    X, y = state.X, state.y
    budget = np.asarray(cost_budget, dtype=float)
    spent = np.sum([[r.latency_ms, r.us_per_row] for r, _ in members], axis=0)
    lock = threading.Lock()
    threads = max(1, n_jobs // min(len(members), max(1, n_jobs)))

    def expected(result: _Evaluated, threads: int) -> float:
        return refit_seconds(result.fold_seconds, len(state.folds), state.threads_per_fit, threads)

    def fold_bag(result: _Evaluated, whole: bool = False) -> list[Any] | None:
        """As many fold models as the budget affords (with ``whole``, all k or ``None``)."""
        nonlocal spent
        cost = np.asarray([result.latency_ms, result.us_per_row], dtype=float)
        with lock:
            room = np.min((budget - spent) / np.maximum(cost, 1e-9))
            count = int(min(len(result.fold_models), 1 + max(0, math.floor(room))))
            if whole and count < len(result.fold_models):
                return None
            spent = spent + cost * (count - 1)
        return result.fold_models[:count]

    def refit_one(result: _Evaluated, weight: float, threads: int, force: bool = False):
        module = family(result.candidate.family)
        iterations = max(1, int(round(np.mean(result.iterations) * 1.1)))
        seconds, remaining = expected(result, threads), deadline - time.monotonic()
        too_late = seconds * REFIT_MARGIN > remaining
        refitted = False
        bag = None
        if result.fold_models is not None and too_late and not force:
            # All k fold models if the budget affords them; else a boosting refit is still
            # tried when it may well finish (cut short, it gives way to the fold models), since
            # fewer fold models than k are a weaker model.
            bag = fold_bag(result, whole=True)
            if bag is None and (seconds > 2 * remaining or not module.ITERATIVE):
                bag = fold_bag(result)
        if bag is not None:
            models = bag
        elif (
            not force
            and too_late
            and not module.ITERATIVE
            and result.candidate.family not in ("random_forest", "extra_trees")
        ):
            return None
        else:
            model, done = module.fit(
                X,
                y,
                task=state.task,
                n_classes=state.n_classes,
                categorical=state.categorical,
                params=result.candidate.params,
                seed=state.seed,
                n_threads=threads,
                deadline=max(deadline - 0.2, time.monotonic() + 1.0) if force else deadline - 0.2,
                n_iterations=iterations,
            )
            models, refitted = [model], True
            if done < iterations and result.fold_models is not None:
                # The deadline cut the refit short: fully trained fold models serve instead.
                models, refitted = fold_bag(result), False
        member = Member(
            result.candidate.name,
            result.candidate.family,
            models,
            weight,
            dict(result.candidate.params),
            refitted,
        )
        state.emit({"kind": "refit", "name": member.name, "served_as": member.served_as})
        return member

    order = sorted(range(len(members)), key=lambda i: -expected(members[i][0], threads))
    workers = max(1, min(len(members), n_jobs))
    with ThreadPoolExecutor(workers) as pool:
        futures = {i: pool.submit(refit_one, *members[i], threads) for i in order}
        fitted = [futures[i].result() for i in range(len(members))]
    fitted = [m for m in fitted if m is not None]
    if not fitted:
        # Nothing could be refitted in time: the best member is refitted regardless, since a
        # model a little late beats no model.
        best, _ = members[0]
        fitted = [refit_one(best, 1.0, max(1, n_jobs), force=True)]
    total = sum(m.weight for m in fitted)
    for member in fitted:
        member.weight /= total
    return fitted
