"""Free text as features: out-of-fold n-gram scores, and a search that reads the words."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlwright.automl import get_metric, search
from mlwright.automl._crossval import make_folds
from mlwright.automl._preprocess import Preprocessor
from mlwright.automl._text import TextScorer

_TITLES = {"Mr.": 0.15, "Mrs.": 0.75, "Miss.": 0.7, "Master.": 0.6, "Dr.": 0.4}
_FIRST = ["John", "Mary", "Anna", "William", "James", "Elisabeth", "Owen", "Karl", "Ida", "Rose"]
_LAST = ["Smith", "Braund", "Cumings", "Heikkinen", "Futrelle", "Allen", "Moran", "McCarthy"]


def passengers(n: int, seed: int) -> pd.DataFrame:
    """Titanic-like rows: the title inside a free-text name carries most of the signal."""
    rng = np.random.default_rng(seed)
    titles = rng.choice(list(_TITLES), size=n, p=[0.5, 0.2, 0.15, 0.1, 0.05])
    names = [
        f"{rng.choice(_LAST)}, {title} {rng.choice(_FIRST)} {rng.choice(_FIRST)} #{i}"
        for i, title in enumerate(titles)
    ]
    fare = rng.gamma(2.0, 15.0, size=n)
    chance = np.array([_TITLES[t] for t in titles]) + 0.1 * (fare > 40)
    survived = np.where(rng.random(n) < chance, "yes", "no")
    return pd.DataFrame({"name": names, "fare": fare.round(2), "survived": survived})


def test_scorer_features_are_out_of_fold_and_informative():
    frame = passengers(600, 0)
    y = (frame["survived"] == "yes").to_numpy().astype(np.int64)
    folds = make_folds(y, "binary", 4, 0)
    scorer = TextScorer("binary", 2, seed=0)
    oof = scorer.fit(frame["name"].tolist(), y, folds)
    assert oof.shape == (600, 1)
    auc = get_metric("roc_auc", "binary").score_encoded(y, np.column_stack([-oof[:, 0], oof[:, 0]]))
    assert auc > 0.75  # the titles are read
    # Out of fold: a row's score comes from a model that did not see it, so it differs from
    # the in-sample score of the model fitted on all rows.
    in_sample = scorer.transform(frame["name"].tolist())
    assert not np.allclose(oof, in_sample)
    assert scorer.strength_ in (0.5, 2.0, 8.0)


def test_scorer_handles_multiclass_regression_and_texts_without_repeated_tokens():
    frame = passengers(300, 1)
    folds_y = np.arange(300) % 3
    multi = TextScorer("multiclass", 3).fit(
        frame["name"].tolist(), folds_y, make_folds(folds_y, "multiclass", 3, 0)
    )
    assert multi.shape == (300, 3)
    assert np.allclose(np.exp(multi).sum(axis=1), 1.0)
    values = np.random.default_rng(0).normal(size=300)
    regression = TextScorer("regression", 0)
    assert regression.fit(
        frame["name"].tolist(), values, make_folds(values, "regression", 3, 0)
    ).shape == (300, 1)
    unique = TextScorer("binary", 2)
    texts = [f"token{i}" for i in range(20)]
    y = np.arange(20) % 2
    assert np.array_equal(unique.fit(texts, y, make_folds(y, "binary", 2, 0)), np.zeros((20, 1)))
    assert unique.transform(["anything"]).shape == (1, 1)


def test_preprocessor_appends_scores_after_the_text_statistics(make_schema):
    frame = passengers(400, 2)
    schema = make_schema(frame, "survived")
    kinds = {c.name: c.semantic_type for c in schema.columns}
    assert kinds["name"] == "text", "a person's full name is free text, not an identifier"
    pre = Preprocessor(schema).fit(frame, "survived")
    features = frame.drop(columns=["survived"])
    before = pre.transform(features).shape[1]
    y = (frame["survived"] == "yes").to_numpy().astype(np.int64)
    scores = pre.fit_text_scores(features, y, "binary", 2, make_folds(y, "binary", 4, 0))
    # One score column, the last output of the name, before the next column's.
    position = pre.output_names_.index("name.score")
    assert list(scores) == [position]
    assert pre.output_names_[position - 2 : position + 2] == [
        "name.characters",
        "name.words",
        "name.score",
        "fare",
    ]
    matrix = pre.transform(features)
    assert matrix.shape[1] == before + 1
    single = pre.transform(features.iloc[[3]])
    assert np.allclose(single, matrix[[3]])


@pytest.mark.slow
def test_a_search_reads_the_title_inside_a_name(make_schema):
    train, test = passengers(700, 3), passengers(400, 4)
    schema = make_schema(train, "survived")
    auc = get_metric("roc_auc", "binary")
    with_text = search(train, schema, max_trials=2, models="lightgbm,linear", seed=0)
    assert with_text.settings["text_columns"] == ["name"]
    without = search(
        train.drop(columns=["name"]),
        make_schema(train.drop(columns=["name"]), "survived"),
        max_trials=2,
        models="lightgbm,linear",
        seed=0,
    )
    scores = [
        auc.score(test["survived"], result.predictor.predict_proba(test), result.predictor.classes_)
        for result in (with_text, without)
    ]
    assert scores[0] > scores[1] + 0.1


def test_short_names_of_several_words_are_text_not_a_category():
    from mlwright.data import Schema

    rng = np.random.default_rng(5)
    makes = ["ford", "chevrolet", "datsun", "volvo", "amc", "plymouth"]
    models = ["fairmont", "camaro", "glc", "ambassador", "coronet", "sapporo", "custom", "deluxe"]
    names = [f"{rng.choice(makes)} {rng.choice(models)} {i % 97}" for i in range(300)]
    frame = pd.DataFrame({"name": names, "mpg": rng.normal(25, 5, size=300)})
    column = Schema.infer(frame, target="mpg").column("name")
    assert column.semantic_type == "text", column.reason
    # Multi-word categories that repeat (few distinct values) stay categories.
    frame["purpose"] = rng.choice(["new car", "used car", "radio tv"], size=300)
    assert Schema.infer(frame, target="mpg").column("purpose").semantic_type == "categorical"
