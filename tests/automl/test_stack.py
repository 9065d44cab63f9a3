"""The second layer, repeated k-fold bagging and the time plan of a search."""

from __future__ import annotations

import math
import pickle
import time

import numpy as np
import pytest

from mlwright.automl import get_metric, search
from mlwright.automl._crossval import CrossValidation, make_folds
from mlwright.automl._portfolio import Candidate, stack_portfolio
from mlwright.automl._scheduler import Budget
from mlwright.automl._search import MAX_REPEATS, _repeat
from mlwright.automl._stack import choose_inputs, stack_columns


def _result(name, family, oof, metric, y):
    from types import SimpleNamespace

    return SimpleNamespace(
        candidate=SimpleNamespace(name=name, family=family),
        layer=1,
        oof=oof,
        score=metric.score_encoded(y, oof),
    )


def test_stack_inputs_are_the_models_a_free_blend_uses():
    rng = np.random.default_rng(0)
    y = rng.normal(size=1500)
    metric = get_metric("rmse", "regression")
    a = _result("a", "lightgbm", y + rng.normal(size=y.size), metric, y)
    b = _result("b", "knn", y + rng.normal(size=y.size), metric, y)
    useless = _result("c", "linear", y + rng.normal(scale=6.0, size=y.size), metric, y)
    chosen = choose_inputs([a, b, useless], y, metric)
    assert {r.candidate.name for r in chosen} == {"a", "b"}
    assert choose_inputs([a], y, metric) == []  # one model: nothing to stack


def test_stack_columns_are_log_odds_log_probabilities_or_values():
    binary = np.array([[0.2, 0.8], [0.9, 0.1]])
    (column,) = stack_columns([binary], "binary").T
    assert np.allclose(column, np.log([0.8 / 0.2, 0.1 / 0.9]))
    multi = np.array([[0.2, 0.3, 0.5]])
    assert np.allclose(stack_columns([multi, multi], "multiclass"), np.log([[0.2, 0.3, 0.5] * 2]))
    values = np.array([1.0, 2.0])
    assert stack_columns([values, values], "regression").shape == (2, 2)
    # A probability of exactly 0 or 1 stays finite.
    assert np.isfinite(stack_columns([np.array([[1.0, 0.0]])], "binary")).all()


def _credit_state(credit_g):
    train, _ = credit_g
    X = train.select_dtypes("number").to_numpy(dtype=float)
    y = (train["class"] == "good").to_numpy(dtype=np.int64)
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
        None,
        time.monotonic(),
        lambda: math.inf,
        (2.5, 16.0),
    )
    return state, y


@pytest.fixture(scope="module")
def credit_state(credit_g):
    """A search state on credit-g's numeric columns with two cross-validated models."""
    state, y = _credit_state(credit_g)
    yield state, y
    state.pool.shutdown(wait=True)


def test_a_repeat_averages_out_of_fold_predictions_over_new_folds(credit_state):
    state, y = credit_state
    result = state.evaluate(Candidate("lgbm", "lightgbm", {"num_leaves": 8}), 60.0)
    first = result.oof.copy()
    folds = make_folds(y, "binary", 4, 99)
    assert state.repeat(result, folds, 60.0, 1)
    assert result.repeats == 2
    assert len(result.fold_models) == 8  # the bag grows by the new folds' models
    assert len(result.iterations) == 8
    second = 2 * result.oof - first  # what the repeat alone predicted
    assert not np.allclose(second, first)
    # Still out of fold: every row predicted by models that did not see it, on both folds.
    assert result.score == pytest.approx(state.metric.score_encoded(y, result.oof))
    entry = next(e for e in state.leaderboard if e["model"] == "lgbm")
    assert entry["repeats"] == 2
    assert entry["score"] == result.score


def test_a_likely_member_too_slow_to_repeat_does_not_stop_the_repeats_of_the_others(credit_g):
    state, y = _credit_state(credit_g)
    try:
        slow = state.evaluate(Candidate("slow", "lightgbm", {"num_leaves": 8}), 60.0)
        fast = state.evaluate(Candidate("fast", "linear", {"C": 1.0}), 60.0)
        # The best model by score would need far more than the phase has left.
        slow.score, fast.score = 0.99, 0.5
        slow.seconds = 1e6
        state.phase_deadline = time.monotonic() + 60.0
        _repeat(state, y, "binary", 0)
        assert slow.repeats == 1
        assert fast.repeats == MAX_REPEATS
    finally:
        state.pool.shutdown(wait=True)


def test_second_layer_models_train_on_features_plus_out_of_fold_predictions(credit_state):
    state, y = credit_state
    linear = state.evaluate(Candidate("lin", "linear", {"C": 1.0}), 60.0)
    boosted = state.best()
    stacked = stack_columns([boosted.oof, linear.oof], "binary")
    state.designs[2] = np.hstack([state.X, stacked])
    (candidate,) = [c for c in stack_portfolio("binary") if c.family == "lightgbm"]
    result = state.evaluate(candidate, 60.0)
    assert result.layer == 2
    # Its fold models take the wider matrix.
    assert result.fold_models[0].num_feature() == state.X.shape[1] + 2
    assert 0.6 < result.score <= 1.0


@pytest.mark.slow
def test_a_timed_search_stacks_and_predicts_through_both_layers(credit_g, make_schema):
    train, test = credit_g
    events = []
    result = search(
        train,
        make_schema(train, "class"),
        time_limit=25,
        models="lightgbm,linear,knn,extra_trees",
        progress=events.append,
    )
    layers = {entry.get("layer") for entry in result.leaderboard if entry["status"] == "ok"}
    assert layers == {1, 2}
    assert result.timings["second_layer"] > 0
    repeated = [e for e in result.leaderboard if e.get("repeats", 1) > 1]
    assert repeated, "small data: the likely members are cross-validated again"
    predictor = result.predictor
    proba = predictor.predict_proba(test)
    assert np.allclose(proba.sum(axis=1), 1.0)
    restored = pickle.loads(pickle.dumps(predictor))
    assert np.allclose(restored.predict_proba(test), proba)
    # One row predicts as it does in a batch, whichever layers serve.
    assert np.allclose(predictor.predict_proba(test.iloc[[7]]), proba[[7]])
    if result.settings["layers"] == 2:
        assert predictor.stack_inputs
        names = {m.name for m in predictor.stack_inputs}
        assert names == set(result.settings["stack_inputs"])
        assert any(e["stack_input"] for e in result.leaderboard)


def test_a_two_layer_predictor_feeds_its_inputs_predictions_to_the_second_layer(credit_state):
    from mlwright.automl._predictor import Member, Predictor
    from mlwright.automl.families import family

    state, y = credit_state
    X = state.X
    lightgbm, linear = family("lightgbm"), family("linear")
    common = {"task": "binary", "n_classes": 2, "categorical": [], "seed": 0, "n_threads": 1}
    boosted, _ = lightgbm.fit(
        X, y, params={"num_leaves": 8}, deadline=math.inf, n_iterations=50, **common
    )
    lin, _ = linear.fit(X, y, params={"C": 1.0}, deadline=math.inf, **common)
    inputs = [
        Member("boosted", "lightgbm", [boosted], 0.0, {}),
        Member("lin", "linear", [lin], 0.5, {}),
    ]
    first = [lightgbm.predict(boosted, X, task="binary"), linear.predict(lin, X, task="binary")]
    design = np.hstack([X, stack_columns(first, "binary")])
    top, _ = lightgbm.fit(
        design, y, params={"num_leaves": 4}, deadline=math.inf, n_iterations=30, **common
    )
    stacked = Member("top", "lightgbm", [top], 0.5, {}, layer=2)

    class Identity:
        def transform(self, frame):
            return np.asarray(frame, dtype=float)

    predictor = Predictor(Identity(), "binary", [0, 1], [inputs[1], stacked], stack_inputs=inputs)
    expected = 0.5 * first[1] + 0.5 * lightgbm.predict(top, design, task="binary")
    assert np.allclose(predictor.blend_matrix(X), expected)
    assert np.allclose(predictor.blend_matrix(X[:1]), expected[:1])
