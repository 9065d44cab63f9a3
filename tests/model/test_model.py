"""Model: prediction with schema validation, save and verified load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from model_helpers import build_model, fit_pipeline

import mlwright
from mlwright.errors import DataError, ModelError, SchemaValidationError
from mlwright.model import Model, load


def test_save_then_load_predicts_the_same(tmp_path, credit_model, credit_read):
    _, test = credit_read
    path = credit_model.save(tmp_path / "model")
    loaded = mlwright.load(path)
    assert isinstance(loaded, Model)
    assert loaded.path == path
    np.testing.assert_array_equal(loaded.predict(test), credit_model.predict(test))
    pd.testing.assert_frame_equal(loaded.predict_proba(test), credit_model.predict_proba(test))
    assert loaded.schema == credit_model.schema
    assert loaded.metrics["validation_score"] == 0.75
    assert loaded.classes == ["bad", "good"]


def test_predict_proba_has_one_column_per_training_label_in_input_order(credit_model, credit_read):
    _, test = credit_read
    shuffled = test.sample(frac=1.0, random_state=3)
    proba = credit_model.predict_proba(shuffled)
    assert list(proba.columns) == ["bad", "good"]
    assert list(proba.index) == list(shuffled.index)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    by_row = credit_model.predict_proba(test).loc[shuffled.index]
    np.testing.assert_allclose(proba.to_numpy(), by_row.to_numpy())


def test_predict_accepts_a_dict_and_a_list_of_dicts(credit_model, credit_read):
    _, test = credit_read
    records = test.drop(columns=["class"]).head(3).to_dict(orient="records")
    expected = credit_model.predict(test.head(3))
    assert list(credit_model.predict(records)) == list(expected)
    assert credit_model.predict(records[0])[0] == expected[0]


def test_extra_columns_and_unseen_categories_do_not_crash(credit_model, credit_read):
    _, test = credit_read
    frame = test.head(5).assign(comment="new column", purpose="time machine")
    predictions = credit_model.predict(frame)
    assert len(predictions) == 5


def test_a_missing_column_is_an_error_naming_it(credit_model, credit_read):
    _, test = credit_read
    with pytest.raises(SchemaValidationError, match="'credit_amount' is missing") as caught:
        credit_model.predict(test.drop(columns=["credit_amount"]))
    assert caught.value.problems[0]["column"] == "credit_amount"


def test_a_wrong_type_is_an_error_naming_column_and_row(credit_model, credit_read):
    _, test = credit_read
    frame = test.head(4).astype({"age": object})
    frame.loc[2, "age"] = "forty"
    with pytest.raises(SchemaValidationError, match=r"'age' has value 'forty' in row 2"):
        credit_model.predict(frame)


def test_numbers_sent_as_text_are_accepted(credit_model, credit_read):
    _, test = credit_read
    frame = test.head(6)
    as_text = frame.astype({"age": "str", "duration": object})
    np.testing.assert_allclose(
        credit_model.predict_proba(as_text).to_numpy(),
        credit_model.predict_proba(frame).to_numpy(),
    )


def test_a_column_dropped_at_training_is_not_required(credit_read):
    train, test = credit_read
    features = train.drop(columns=["foreign_worker"])
    predictor = fit_pipeline(features, "class")
    # The schema knows the column (the data had it); the predictor does not use it.
    model = build_model(train, "class", predictor=predictor)
    assert len(model.predict(test.drop(columns=["foreign_worker"]))) == len(test)


def test_an_empty_frame_gives_empty_predictions(credit_model, credit_read):
    _, test = credit_read
    assert credit_model.predict(test.head(0)).shape == (0,)
    assert list(credit_model.predict_proba(test.head(0)).columns) == ["bad", "good"]


def test_other_inputs_are_refused_clearly(credit_model):
    with pytest.raises(DataError, match="pass a pandas DataFrame"):
        credit_model.predict("age=3")


def test_regression_has_no_probabilities(credit_read):
    train, test = credit_read
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline

    numeric = ["duration", "age", "installment_commitment"]
    pipeline = make_pipeline(ColumnTransformer([("n", "passthrough", numeric)]), Ridge())
    pipeline.fit(train[numeric], train["credit_amount"])
    pipeline.feature_names = numeric
    model = build_model(train[[*numeric, "credit_amount"]], "credit_amount", predictor=pipeline)
    assert model.task == "regression"
    assert model.predict(test).dtype.kind == "f"
    with pytest.raises(ModelError, match="no class probabilities"):
        model.predict_proba(test)


def test_a_tampered_model_is_refused_by_load(tmp_path, credit_model):
    path = credit_model.save(tmp_path / "model")
    pickle_path = path / "predictor.pkl"
    content = bytearray(pickle_path.read_bytes())
    content[-10] ^= 0xFF
    pickle_path.write_bytes(bytes(content))
    with pytest.raises(ModelError, match="predictor.pkl"):
        load(path)


def test_load_of_a_missing_path_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load(tmp_path / "nothing")
