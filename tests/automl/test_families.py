"""Every model family fits and predicts on small real data, with categoricals and missing."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from mlwright.automl import FAMILIES
from mlwright.automl._preprocess import Preprocessor
from mlwright.automl.families import family


@pytest.fixture(scope="module")
def design(credit_g, make_schema):
    train, test = credit_g
    train = train.copy()
    train.loc[::7, "purpose"] = None  # missing categories
    train.loc[::5, "age"] = np.nan  # missing numbers
    pre = Preprocessor(make_schema(train, "class")).fit(train, "class")
    X = pre.transform(train)
    X_test = pre.transform(test)
    y = (train["class"] == "good").to_numpy().astype(int)
    return pre, X, y, X_test


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("task", ["binary", "regression"])
def test_family_fits_and_predicts(design, name, task):
    pre, X, y, X_test = design
    module = family(name)
    target = y if task == "binary" else X[:, pre.output_names_.index("credit_amount")]
    features = X if task == "binary" else np.delete(X, pre.output_names_.index("credit_amount"), 1)
    test = (
        X_test
        if task == "binary"
        else np.delete(X_test, pre.output_names_.index("credit_amount"), 1)
    )
    categorical = (
        [i for i in pre.categorical_ if task == "binary" or i < 4]
        if task == "binary"
        else [i - (i > pre.output_names_.index("credit_amount")) for i in pre.categorical_]
    )
    split = 600
    model, iterations = module.fit(
        features[:split],
        target[:split],
        task=task,
        n_classes=2 if task == "binary" else 0,
        categorical=categorical,
        params={},
        seed=0,
        n_threads=1,
        deadline=math.inf,
        X_val=features[split:],
        y_val=target[split:],
    )
    assert iterations >= 1
    output = module.predict(model, test, task=task)
    if task == "binary":
        assert output.shape == (len(test), 2)
        assert np.allclose(output.sum(axis=1), 1.0)
        assert ((output >= 0) & (output <= 1)).all()
    else:
        assert output.shape == (len(test),)
        assert np.isfinite(output).all()
        # Better than predicting the mean on held-out rows of the training data.
        held = module.predict(model, features[split:], task=task)
        assert np.mean((held - target[split:]) ** 2) < np.var(target[split:])
    # A fitted model is saved in the artifact: it must pickle, and predict the same after.
    restored = pickle.loads(pickle.dumps(model))
    assert np.allclose(module.predict(restored, test, task=task), output)


def test_linear_auto_regularisation_is_chosen_by_inner_cross_validation():
    """On small data ``C="auto"`` picks C by inner folds; too large a problem keeps C = 1."""
    from sklearn.linear_model import LogisticRegression, RidgeCV

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 40))
    # Few informative columns among many noisy ones: strong regularisation pays.
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=1.5, size=300) > 0).astype(int)
    module = family("linear")
    common = {"categorical": [], "seed": 0, "n_threads": 1, "deadline": math.inf}
    (_, model, _), _ = module.fit(X, y, task="binary", n_classes=2, params={"C": "auto"}, **common)
    assert model.C < 1.0
    big = np.repeat(X, 50, axis=0)
    (_, model, _), _ = module.fit(
        big, np.repeat(y, 50), task="binary", n_classes=2, params={"C": "auto"}, **common
    )
    assert type(model) is LogisticRegression
    assert model.C == 1.0
    values = X[:, 0] * 3 + rng.normal(size=300)
    (_, model, _), _ = module.fit(
        X, values, task="regression", n_classes=0, params={"alpha": "auto"}, **common
    )
    assert isinstance(model, RidgeCV)


def test_linear_solver_keeps_blas_to_its_threads(design, monkeypatch):
    # Two fits run at a time: BLAS starting a thread per core in each made a 1 s linear
    # cross-validation take 19 s when two searches shared two cores.
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_info

    _, X, y, _ = design
    seen = []
    original = LogisticRegression.fit

    def recording_fit(self, *args, **kwargs):
        seen.extend(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LogisticRegression, "fit", recording_fit)
    family("linear").fit(
        X,
        y,
        task="binary",
        n_classes=2,
        categorical=[],
        params={"C": "auto"},
        seed=0,
        n_threads=1,
        deadline=math.inf,
    )
    assert seen
    assert set(seen) == {1}


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_knn_prediction_keeps_openmp_to_its_threads(design, task, monkeypatch):
    # scikit-learn's neighbour search ignores n_jobs for its OpenMP distance computations: a
    # one-row prediction started a thread per core, and under load its p99 was 88-220 ms.
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from threadpoolctl import threadpool_info

    _, X, y, X_test = design
    model, _ = family("knn").fit(
        X,
        y if task == "binary" else y.astype(float),
        task=task,
        n_classes=2 if task == "binary" else 0,
        categorical=[],
        params={"n_neighbors": 5},
        seed=0,
        n_threads=1,
        deadline=math.inf,
    )
    estimator = KNeighborsClassifier if task == "binary" else KNeighborsRegressor
    method = "predict_proba" if task == "binary" else "predict"
    seen = []
    original = getattr(estimator, method)

    def recording(self, *args, **kwargs):
        seen.extend(p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(estimator, method, recording)
    one_row = family("knn").predict(model, X_test[:1], task=task, n_threads=1)
    assert len(one_row) == 1
    assert seen
    assert set(seen) == {1}
    seen.clear()
    family("knn").predict(model, X_test, task=task, n_threads=2)
    assert set(seen) == {2}
