"""AutoClassifier and AutoRegressor are scikit-learn estimators: the library's own checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from model_helpers import CREDIT_TEST, CREDIT_TRAIN
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from mlwright import AutoClassifier, AutoRegressor
from mlwright.data import read

# One LightGBM fit per search keeps the ~100 fits of the checks fast; max_trials without a time
# limit makes every fit deterministic, as the idempotence and invariance checks require.
FAST = {"time_limit": None, "max_trials": 1, "models": "lightgbm", "n_jobs": 1}


@pytest.mark.slow
# Every check passes, so no expected-failure marks.
@parametrize_with_checks([AutoClassifier(**FAST), AutoRegressor(**FAST)])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_get_params_set_params_and_clone():
    classifier = AutoClassifier(time_limit=5, metric="accuracy", models=["lightgbm"])
    assert classifier.get_params()["metric"] == "accuracy"
    copy = clone(classifier).set_params(seed=3)
    assert copy.seed == 3
    assert classifier.seed == 0
    assert copy.models == ["lightgbm"]


def test_a_dataframe_of_mixed_types_with_string_labels():
    train, test = read(CREDIT_TRAIN), read(CREDIT_TEST)
    classifier = AutoClassifier(**FAST).fit(train.drop(columns=["class"]), train["class"])
    assert list(classifier.classes_) == ["bad", "good"]
    assert list(classifier.feature_names_in_) == [c for c in train.columns if c != "class"]
    proba = classifier.predict_proba(test.drop(columns=["class"]))
    assert proba.shape == (len(test), 2)
    assert set(classifier.predict(test.drop(columns=["class"]))) <= {"bad", "good"}
    assert classifier.metrics_["metric"] == "roc_auc"


def test_works_inside_cross_validation():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = 2.0 * X[:, 0] - X[:, 1] + rng.normal(scale=0.1, size=120)
    scores = cross_val_score(AutoRegressor(**FAST), pd.DataFrame(X, columns=list("abc")), y, cv=2)
    assert scores.min() > 0.5
