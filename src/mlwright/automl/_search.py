"""The AutoML search: a portfolio in two layers, repeated bagging, tuning, ensemble, refit.

Plan of one search, all inside the caller's deadline (docs/automl.md tells it for users):

1. preprocess from the schema (and quality findings) into one numeric matrix; free-text
   columns also get the out-of-fold score of a linear model over their n-grams;
2. first layer: k-fold cross-validation (stratified for classification) of the portfolio's
   configurations (a broader one on small data), two fits at a time, early stopping on each
   validation fold, keeping out-of-fold predictions; the scheduler starts a configuration only
   if its estimated cost fits in what is left after the reserves of the later phases and the
   refit, and gives every fit a deadline so nothing overruns;
3. Optuna TPE tuning of the best gradient-boosting families until the later phases' reserve;
4. repeated k-fold bagging on small data: the likely ensemble members are cross-validated again
   on new folds, which steadies their out-of-fold predictions and adds fold models to average;
5. second layer: a few models trained on the original features plus the out-of-fold
   predictions of the first-layer models a free blend would use (stacking);
6. what time is left goes to more tuning trials;
7. greedy ensemble selection over both layers' out-of-fold predictions, within a
   prediction-cost budget;
8. each member (and each stack input) refitted on all the data, or served by its fold models.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlwright.automl._crossval import CrossValidation, Evaluated, make_folds, n_splits
from mlwright.automl._ensemble import select_ensemble
from mlwright.automl._metrics import Metric, default_metric, get_metric, sort_labels
from mlwright.automl._portfolio import portfolio, stack_portfolio
from mlwright.automl._predictor import Predictor
from mlwright.automl._preprocess import Preprocessor, category_key
from mlwright.automl._refit import refit
from mlwright.automl._scheduler import REFIT_MARGIN, Budget, refit_seconds
from mlwright.automl._stack import choose_inputs, ensemble_library, stack_columns
from mlwright.automl._tune import Tuner
from mlwright.automl.families import FAMILY_NAMES, installed, missing_extra
from mlwright.errors import ConfigError, DataError

__all__ = ["SearchResult", "search"]

DEFAULT_TIME_LIMIT = 60.0
#: Prediction-cost budget of the ensemble (single-row milliseconds, batch microseconds of one
#: core per row and model output): about 2.5 ms a row and 100,000 rows/s on two cores with
#: preprocessing and schema validation included. Calibrated end to end on adult: an XGBoost
#: model costing 14.6 us a row on one core predicted 114,000 rows/s through ``Model.predict``
#: on two (benchmarks/prediction_cost.py measures each family's cost).
_COST_BUDGET = (2.5, 16.0)
#: Repeated k-fold bagging: on data up to this many rows, at most this many cross-validations
#: of each likely member, for at most this many of them.
REPEAT_ROWS = 10_000
MAX_REPEATS = 3
REPEATED_MEMBERS = 4
#: Shares of the search's time that the later phases may keep back from the first layer.
_STACK_SHARE = 0.3
_REPEAT_SHARE = 0.2


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
        "nn": "mlp",
        "neural_network": "mlp",
    }
    names = [aliases.get(name, name) for name in names]
    unknown = [name for name in names if name not in FAMILY_NAMES]
    if unknown or not names:
        raise ConfigError(
            f"Unknown model family {', '.join(map(repr, unknown)) or '(none given)'} in models; "
            f"choose from {', '.join(FAMILY_NAMES)} (comma-separated)."
        )
    for name in names:
        if not installed(name):
            raise ConfigError(missing_extra(name))
    return list(dict.fromkeys(names))


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

    n_rows = len(y)
    folds = make_folds(y, task, n_splits(n_rows, deadline - time.monotonic(), n_jobs), seed)
    preprocessor = Preprocessor(schema, findings, seed).fit(labelled, target)
    features = labelled.drop(columns=[target])
    if preprocessor.text_columns_:
        # Out-of-fold text scores, with the search's own folds (at most a tenth of the time).
        text_deadline = time.monotonic() + 0.1 * max(deadline - time.monotonic(), 0.0)
        scores = preprocessor.fit_text_scores(features, y, task, n_classes, folds, text_deadline)
        X = preprocessor.transform(features)
        for position, column in scores.items():
            X[:, position] = column
    else:
        X = preprocessor.transform(features)
    timings["preprocess"] = time.monotonic() - start

    budget = Budget(deadline=deadline, n_workers=max(1, min(n_jobs, len(folds))))
    outputs = n_classes if task == "multiclass" else 1
    cost_budget = (_COST_BUDGET[0], _COST_BUDGET[1] * outputs)

    # Once a provisional ensemble is known (before the last phase), the refit reserve is that
    # of its members rather than of the four best models.
    members_reserve: list[float] = []

    def search_deadline() -> float:
        general = budget.refit_reserve(n_rows, len(folds))
        return deadline - (min(general, members_reserve[0]) if members_reserve else general)

    state = CrossValidation(
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
    taken: set[str] = set()

    def unique(name: str) -> str:
        name = _unique_name(name, taken)
        taken.add(name)
        return name

    timed = math.isfinite(deadline)
    plan = _Plan(state, families, n_rows, timed)
    inputs: list[Evaluated] = []
    try:
        began = time.monotonic()
        trials = _first_layer(state, plan, families, n_rows, max_trials, unique)
        tuner = Tuner(state, families, seed, n_rows)
        state.phase_deadline = plan.first_layer_end()
        trials = tuner.run(trials, max_trials, unique)
        timings["first_layer"] = time.monotonic() - began
        if not state.results:
            raise ConfigError(
                "No model could be trained within the time limit (every configuration failed "
                "or had no time). Raise --time-limit; the leaderboard lists each attempt: "
                + "; ".join(f"{e['model']}: {e['status']}" for e in state.leaderboard[:5])
            )
        began = time.monotonic()
        if plan.repeats:
            state.phase_deadline = plan.repeats_end()
            _repeat(state, y, task, seed)
        timings["repeats"] = time.monotonic() - began
        began = time.monotonic()
        state.phase_deadline = None
        inputs, trials = _second_layer(state, plan, max_trials, trials, unique)
        timings["second_layer"] = time.monotonic() - began
        began = time.monotonic()
        if timed and state.results:
            provisional, _ = _select(state, inputs, cost_budget)
            members_reserve.append(_members_reserve(state, provisional, inputs))
        trials = tuner.run(trials, max_trials, unique, fill=timed)
        timings["tuning_after_stack"] = time.monotonic() - began
        timings["search"] = time.monotonic() - start - timings["preprocess"]

        began = time.monotonic()
        members, ensemble_score = _select(state, inputs, cost_budget)
        blended = sum(r.oof * w for r, w in members)
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
        fitted, served_inputs = refit(
            state,
            members,
            deadline,
            n_jobs,
            cost_budget,
            inputs=inputs,
            prefer_bags=n_rows <= REPEAT_ROWS,
        )
        timings["refit"] = time.monotonic() - began
    finally:
        state.pool.shutdown(wait=True)

    predictor = Predictor(
        preprocessor, task, classes, fitted, n_jobs=max(1, n_jobs), stack_inputs=served_inputs
    )
    in_ensemble = {m.name: m for m in fitted}
    as_input = {m.name: m for m in served_inputs}
    for entry in state.leaderboard:
        member = in_ensemble.get(entry["model"]) or as_input.get(entry["model"])
        entry["weight"] = member.weight if entry["model"] in in_ensemble else 0.0
        entry["in_ensemble"] = entry["model"] in in_ensemble
        entry["stack_input"] = entry["model"] in as_input
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
            "layers": 2 if any(m.layer == 2 for m in fitted) else 1,
            "stack_inputs": [m.name for m in served_inputs],
            "text_columns": preprocessor.text_columns_,
        },
        timings={k: round(v, 3) for k, v in timings.items()},
    )


def _select(state: CrossValidation, inputs: list[Evaluated], cost_budget) -> tuple[list, float]:
    """Ensemble selection over the first-layer library and the second layer: (members, score).

    Members are ``(result, weight)`` pairs.
    """
    chosen, folds, n_rows = state.metric, state.folds, len(state.y)
    ranked = ensemble_library([r for r in state.results if r.layer == 1], chosen)
    ranked += sorted((r for r in state.results if r.layer == 2), key=lambda r: chosen.loss(r.score))
    input_cost = np.sum([r.cost for r in inputs], axis=0) if inputs else np.zeros(2)
    # A second-layer member costs its own prediction plus all of its inputs'.
    costs = [tuple(r.cost + (input_cost if r.layer == 2 else 0.0)) for r in ranked]
    best = min(ranked, key=lambda r: chosen.loss(r.score))
    weights, ensemble_score = select_ensemble(
        [r.oof for r in ranked],
        state.y,
        chosen,
        costs=costs,
        budget=cost_budget,
        max_rounds=40 if n_rows < 20000 else 25,
        # At most one standard error of the best model's fold scores; between two models
        # the paired per-fold difference decides what counts as noise.
        tolerance=max(
            float(np.std(best.fold_scores)) / math.sqrt(len(folds)),
            0.002 * abs(best.score),
        ),
        fold_losses=[[chosen.loss(s) for s in r.fold_scores] for r in ranked],
        folds=[valid for _, valid in folds],
    )
    return [(ranked[i], w) for i, w in weights.items()], ensemble_score


def _members_reserve(state: CrossValidation, members: list, inputs: list[Evaluated]) -> float:
    """Seconds to keep for selecting the ensemble again and refitting these members.

    The members (and, for a second-layer member, its inputs) whose fold models cannot serve
    in their place refit one core each, as :meth:`Budget.refit_reserve` assumes. A member that
    the last phase adds later, without time for its refit, serves by its fold models.
    """
    results = [result for result, _ in members]
    if any(result.layer == 2 for result in results):
        results += [result for result in inputs if result not in results]
    refits = [
        REFIT_MARGIN * refit_seconds(result.fold_seconds, len(state.folds), 1, 1)
        for result in results
        if not state.bag_affordable(result)
    ]
    refit = max(max(refits, default=0.0), sum(refits) / state.budget.n_workers)
    return refit + 0.3 + len(state.y) / 40000 + 0.3


class _Plan:
    """When each phase must end: the first layer leaves the later phases their reserve.

    The reserves are estimates from what the first layer measured on this data: the second
    layer costs about 1.2 times its families' first-layer cross-validations (it sees a few
    more columns), and one more repeat of a likely member costs what its first one did. Each is
    capped at a share of the search's time, and is zero where the phase will not run (no time
    limit, too few models, large data).
    """

    def __init__(self, state: CrossValidation, families, n_rows: int, timed: bool) -> None:
        self.state = state
        self.began = time.monotonic()
        self.total = max(state.search_deadline() - self.began, 0.0)
        self.stack = [c for c in stack_portfolio(state.task) if c.family in families]
        self.repeats = timed and n_rows <= REPEAT_ROWS

    def stack_reserve(self) -> float:
        if len([r for r in self.state.results if r.layer == 1]) < 2:
            return 0.0
        estimates = [self.state.budget.estimate(f"{c.family}@2") for c in self.stack]
        wanted = sum(e for e in estimates if e is not None)
        return min(wanted, _STACK_SHARE * self.total)

    def repeat_reserve(self) -> float:
        if not self.repeats:
            return 0.0
        likely = sorted(self.state.results, key=lambda r: self.state.metric.loss(r.score))
        wanted = sum(r.seconds for r in likely[:REPEATED_MEMBERS])
        return min(wanted, _REPEAT_SHARE * self.total)

    def first_layer_end(self) -> float:
        return self.state.search_deadline() - self.stack_reserve() - self.repeat_reserve()

    def repeats_end(self) -> float:
        return self.state.search_deadline() - self.stack_reserve()


def _first_layer(state, plan: _Plan, families, n_rows, max_trials, unique) -> int:
    """Cross-validate the portfolio in order while its phase has time; the trial count."""
    available = tuple(name for name in families if installed(name))
    queue = portfolio(state.task, n_rows, state.X.shape[1], available)
    if n_rows * state.X.shape[1] > 3_000_000:
        queue = [c for c in queue if c.family != "knn"]  # neighbour search would dominate
    trials = 0
    for candidate in queue:
        if max_trials is not None and trials >= max_trials:
            break
        candidate.name = unique(candidate.name)
        state.phase_deadline = plan.first_layer_end()
        cap = state.plan(candidate)
        if cap is None:
            state.skip(candidate, "not enough time left")
            continue
        trials += 1
        state.evaluate(candidate, cap)
    return trials


def _repeat(state: CrossValidation, y: np.ndarray, task: str, seed: int) -> None:
    """Repeated k-fold bagging of the likely members, round by round, while time allows."""
    likely = sorted(
        (r for r in state.results if r.layer == 1), key=lambda r: state.metric.loss(r.score)
    )[:REPEATED_MEMBERS]
    for repeat_index in range(1, MAX_REPEATS):
        folds = make_folds(y, task, len(state.folds), seed + 7919 * repeat_index)
        ran = False
        for result in likely:
            if result.repeats > repeat_index:
                continue
            remaining = state.deadline() - time.monotonic()
            needed = result.seconds / result.repeats
            if needed * 1.1 > remaining:
                continue
            ran = state.repeat(result, folds, remaining, repeat_index) or ran
        if not ran and all(r.repeats <= repeat_index for r in likely):
            return


def _second_layer(state: CrossValidation, plan: _Plan, max_trials, trials, unique):
    """Stack on the first layer's out-of-fold predictions; the stack inputs and trial count."""
    if not plan.stack or (max_trials is not None and trials >= max_trials):
        return [], trials
    inputs = choose_inputs(state.results, state.y, state.metric)
    if not inputs:
        return [], trials
    stacked = stack_columns([r.oof for r in inputs], state.task)
    state.designs[2] = np.hstack([state.X, stacked])
    ran = False
    for candidate in plan.stack:
        if max_trials is not None and trials >= max_trials:
            break
        candidate.name = unique(candidate.name)
        cap = state.plan(candidate)
        if cap is None:
            state.skip(candidate, "not enough time left")
            continue
        trials += 1
        ran = state.evaluate(candidate, cap) is not None or ran
    return (inputs if ran else []), trials
