"""mlwright.train end to end on small real data, one test per task, and its option checks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from model_helpers import CREDIT_TEST, CREDIT_TRAIN

import mlwright
from mlwright.data import read
from mlwright.errors import ConfigError, DataError

FAST = {"max_trials": 3, "models": "lightgbm", "seed": 1}


@pytest.fixture(scope="module")
def credit_artifact(tmp_path_factory):
    output = tmp_path_factory.mktemp("train") / "credit-g"
    model = mlwright.train(CREDIT_TRAIN, target="class", output=output, **FAST)
    return model, output


def test_binary_on_credit_g(credit_artifact):
    model, output = credit_artifact
    assert model.path == output
    # Later stages add their own files (the drift reference, the MLflow flavor).
    assert {
        "MANIFEST",
        "findings.json",
        "lineage.json",
        "metrics.json",
        "model.json",
        "predictor.pkl",
        "schema.json",
    } <= {p.name for p in output.iterdir()}
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["metric"] == "roc_auc"
    assert 0.6 < metrics["validation_score"] <= 1.0
    assert metrics["validation_std"] >= 0
    assert len(metrics["fold_scores"]) == metrics["n_folds"] >= 3
    assert metrics["leaderboard"]
    assert all("score" in row for row in metrics["leaderboard"])

    test = read(CREDIT_TEST)
    loaded = mlwright.load(output)
    proba = loaded.predict_proba(test)
    assert list(proba.columns) == ["bad", "good"]
    assert set(loaded.predict(test)) <= {"bad", "good"}
    from mlwright.automl import get_metric

    auc = get_metric("roc_auc", "binary").score(test["class"], proba.to_numpy(), ["bad", "good"])
    assert auc > 0.65


def test_lineage_records_data_settings_versions_and_time(credit_artifact):
    _, output = credit_artifact
    lineage = json.loads((output / "lineage.json").read_text())
    assert lineage["data"]["fingerprint"].startswith("sha256:")
    assert lineage["data"]["fingerprint"] == mlwright.data.fingerprint(read(CREDIT_TRAIN))
    assert lineage["data"]["n_rows"] == 750
    assert lineage["data"]["target"] == "class"
    assert lineage["settings"]["max_trials"] == 3
    assert lineage["settings"]["models"] == ["lightgbm"]
    assert lineage["seed"] == 1
    assert lineage["seconds_taken"] > 0
    assert {"read", "search", "total"} <= set(lineage["timings"])
    assert {"mlwright", "python", "scikit-learn", "lightgbm", "pandas"} <= set(lineage["versions"])
    assert lineage["environment"]["platform"]
    findings = json.loads((output / "findings.json").read_text())
    assert isinstance(findings, list)


@pytest.mark.bench_suite
@pytest.mark.slow
def test_multiclass_on_vehicle(bench_dataset, tmp_path):
    entry = bench_dataset("vehicle")
    model = mlwright.train(entry["train"], target=entry["target"], **FAST)
    test = read(entry["test"])
    labels = sorted(set(read(entry["train"])[entry["target"]]), key=str)
    assert model.task == "multiclass"
    assert model.classes == labels
    proba = model.predict_proba(test)
    assert list(proba.columns) == labels
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    accuracy = float(np.mean(model.predict(test) == test[entry["target"]].to_numpy()))
    assert accuracy > 0.5
    saved = mlwright.load(model.save(tmp_path / "vehicle"))
    np.testing.assert_allclose(saved.predict_proba(test).to_numpy(), proba.to_numpy())


@pytest.mark.bench_suite
@pytest.mark.slow
def test_regression_on_abalone(bench_dataset):
    entry = bench_dataset("abalone")
    model = mlwright.train(entry["train"], target=entry["target"], **FAST)
    test = read(entry["test"])
    assert model.task == "regression"
    assert model.metrics["metric"] == "rmse"
    predictions = model.predict(test)
    assert predictions.dtype.kind == "f"
    assert len(predictions) == len(test)
    truth = test[entry["target"]].to_numpy(dtype=float)
    rmse = float(np.sqrt(np.mean((predictions - truth) ** 2)))
    baseline = float(np.sqrt(np.mean((truth - truth.mean()) ** 2)))
    assert rmse < 0.8 * baseline


def test_rows_without_a_target_are_dropped_and_recorded(tmp_path):
    frame = pd.read_csv(CREDIT_TRAIN)
    frame.loc[[3, 10, 20], "class"] = None
    model = mlwright.train(frame, target="class", max_trials=1, models="linear")
    assert model.lineage["data"]["dropped_rows"] == {"missing_target": 3}
    assert model.lineage["data"]["n_rows"] == len(frame) - 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"metric": "accuracyy"}, r"Unknown metric 'accuracyy' \(did you mean 'accuracy'\?\)"),
        ({"metric": "rmse"}, r"rmse.*binary.*roc_auc"),
        ({"models": "lightgbm,forest"}, r"Unknown model family 'forest'.*lightgbm"),
        ({"time_limit": 0}, "positive number of seconds"),
        ({"time_limit": -5}, "positive number of seconds"),
        ({"max_trials": 0}, "positive whole number"),
    ],
)
def test_bad_options_are_refused_with_the_valid_choices(options, message):
    with pytest.raises(ConfigError, match=message):
        mlwright.train(CREDIT_TRAIN, target="class", **options)


def test_an_unknown_target_names_the_columns():
    with pytest.raises(DataError, match=r"'clas' is not in .*did you mean 'class'"):
        mlwright.train(CREDIT_TRAIN, target="clas", max_trials=1)
