"""Folds, the refit reserve and the final refit: what serves when time or budget is short."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from mlwright.automl._crossval import CrossValidation, make_folds, n_splits
from mlwright.automl._metrics import get_metric
from mlwright.automl._portfolio import Candidate
from mlwright.automl._refit import refit
from mlwright.automl._scheduler import REFIT_MARGIN, Budget, refit_seconds


@pytest.mark.parametrize(
    ("rows", "seconds_left", "n_jobs", "expected"),
    [
        (750, 60, 2, 6),  # five folds rounded up to whole rounds of two fits
        (750, 60, 1, 5),
        (50_000, 60, 2, 4),
        (750, 10, 2, 4),  # a short budget: three, rounded up
        (750, 60, 4, 8),
    ],
)
def test_folds_are_whole_rounds_of_parallel_fits(rows, seconds_left, n_jobs, expected):
    assert n_splits(rows, seconds_left, n_jobs) == expected


def test_reserve_skips_members_whose_fold_models_can_serve():
    budget = Budget(deadline=time.monotonic() + 60, n_workers=2)
    budget.record("lightgbm", 10.0, 4.0, 0.20, bagged=True)
    budget.record("catboost", 12.0, 5.0, 0.21, bagged=True)
    selection_only = budget.refit_reserve(1000, 6)
    assert selection_only == pytest.approx(0.3 + 1000 / 40000 + 0.3)
    budget.record("random_forest", 12.0, 6.0, 0.19)  # no fold models: it must refit
    reserve = budget.refit_reserve(1000, 6)
    assert reserve == pytest.approx(selection_only + REFIT_MARGIN * refit_seconds(6.0, 6, 1, 1))


def test_refit_estimate_grows_with_rows_and_shrinks_with_threads():
    one = refit_seconds(10.0, 5, 1, 1)
    assert refit_seconds(10.0, 3, 1, 1) > one  # 3/2 of a fold's rows against 5/4
    assert 10.0 / 2 < refit_seconds(10.0, 5, 1, 2) < one


@pytest.fixture(scope="module")
def refit_state(credit_g):
    """A real search state on credit-g's numeric columns and one cross-validated LightGBM."""
    train, _ = credit_g
    X = train.select_dtypes("number").to_numpy(dtype=float)
    y = (train["class"] == "good").to_numpy(dtype=np.int64)
    events = []
    state = CrossValidation(
        X,
        y,
        "binary",
        2,
        [],
        get_metric("roc_auc", "binary"),
        make_folds(y, "binary", 4, 0),
        Budget(deadline=math.inf, n_workers=2),
        0,
        2,
        events.append,
        time.monotonic(),
        lambda: math.inf,
        (2.5, 16.0),
    )
    try:
        candidate = Candidate("lightgbm", "lightgbm", {"learning_rate": 0.1, "num_leaves": 8})
        result = state.evaluate(candidate, 60.0)
    finally:
        state.pool.shutdown(wait=True)
    state.events = events
    return state, result


def test_refit_on_all_rows_when_time_allows(refit_state):
    state, result = refit_state
    (member,), _ = refit(state, [(result, 1.0)], time.monotonic() + 60, 2, (2.5, 16.0))
    assert member.refitted
    assert len(member.models) == 1
    assert state.events[-1]["served_as"] == "refitted on all rows"


def test_all_fold_models_serve_when_there_is_no_time_and_the_budget_affords_them(refit_state):
    state, result = refit_state
    (member,), _ = refit(state, [(result, 1.0)], time.monotonic() - 1, 2, (2.5, 16.0))
    assert not member.refitted
    assert member.models == result.fold_models
    assert state.events[-1]["served_as"] == "average of 4 fold model(s)"


def test_fold_models_are_limited_to_what_the_prediction_budget_affords(refit_state):
    state, result = refit_state
    cost = np.array([result.latency_ms, result.us_per_row])
    # Room for the member and one more of its fold models, not for all four.
    (member,), _ = refit(state, [(result, 1.0)], time.monotonic() - 1, 2, tuple(cost * 2.5))
    assert not member.refitted
    assert len(member.models) == 2
