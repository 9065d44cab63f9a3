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


# --- missing-value markers, end to end ---------------------------------------------------------


def _marker_rows(n: int = 300, seed: int = 3) -> list[str]:
    """x (number, '?' in a few rows), ward ('-' is a ward), label '+'/'-' driven by both."""
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(n):
        ward = ["A", "B", "-"][index % 3]
        x = rng.normal()
        score = x + (1.5 if ward == "-" else -0.5 if ward == "A" else 0.0)
        label = "+" if score + rng.normal(scale=0.3) > 0 else "-"
        shown = "?" if index % 25 == 7 else f"{x:.3f}"
        rows.append(f"{shown},{ward},{label}")
    return rows


@pytest.fixture(scope="module")
def signs_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("signs")
    path = folder / "signs.csv"
    path.write_text("x,ward,label\n" + "\n".join(_marker_rows()) + "\n")
    model = mlwright.train(
        path, target="label", output=folder / "model", max_trials=2, models="lightgbm"
    )
    return model, path


def test_plus_minus_labels_train_and_predict(signs_model, tmp_path):
    from mlwright.model._batch import predict_file

    model, path = signs_model
    assert model.task == "binary"
    assert sorted(model.classes) == ["+", "-"]
    assert model.lineage["data"]["dropped_rows"] == {"missing_target": 0}
    output = tmp_path / "predictions.csv"
    assert predict_file(mlwright.load(model.path), path, output) == 300
    predictions = pd.read_csv(output, keep_default_na=False)
    assert set(predictions["prediction"]) == {"+", "-"}
    assert {"proba_+", "proba_-"} <= set(predictions.columns)
    truth = read(path)["label"]
    assert (predictions["prediction"] == truth).mean() > 0.8


def test_dash_as_a_feature_category_is_known_to_the_model(signs_model):
    model, _ = signs_model
    ward = model.schema.column("ward")
    assert ward.semantic_type == "categorical"
    assert "-" in ward.categories
    assert not ward.nullable
    x = model.schema.column("x")
    assert x.semantic_type == "numeric"
    assert x.nullable
    assert model.schema.na_values is None  # the automatic rule, recorded
    kept = [f for f in model.findings if f["kind"] == "kept_markers"]
    assert {tuple(f["columns"]) for f in kept} == {("ward",), ("label",)}


def test_a_one_row_file_is_read_as_the_training_file_was(signs_model, tmp_path):
    from mlwright.model._batch import predict_file

    model, path = signs_model
    loaded = mlwright.load(model.path)
    lines = path.read_text().splitlines()
    index = next(i for i, line in enumerate(lines[1:]) if ",-," in line and "?" not in line)
    row_with_marker_x = next(i for i, line in enumerate(lines[1:]) if line.startswith("?"))
    whole = tmp_path / "whole.csv"
    predict_file(loaded, path, whole)
    expected = pd.read_csv(whole, keep_default_na=False)
    for position in (index, row_with_marker_x):
        one = tmp_path / f"one-{position}.csv"
        one.write_text(lines[0] + "\n" + lines[position + 1] + "\n")
        out = tmp_path / f"one-{position}-predictions.csv"
        predict_file(loaded, one, out)
        got = pd.read_csv(out, keep_default_na=False)
        assert got["prediction"].iloc[0] == expected["prediction"].iloc[position]
        assert got["proba_+"].iloc[0] == pytest.approx(expected["proba_+"].iloc[position])
    # Alone, the ward column of that file is nothing but a marker: read with the automatic
    # rule, '-' would be missing.
    assert read(tmp_path / f"one-{index}.csv")["ward"].isna().all()


def test_explicit_na_values_are_recorded_and_apply_at_prediction(tmp_path):
    from mlwright.evaluate._evaluation import read_frame

    rows = _marker_rows()
    path = tmp_path / "coded.csv"
    path.write_text(
        "x,ward,label\n" + "\n".join(row.replace("?", "-999", 1) for row in rows) + "\n"
    )
    model = mlwright.train(
        path, target="label", max_trials=1, models="lightgbm", na_values={"x": ["-999"]}
    )
    assert model.schema.na_values == {"x": ["-999"]}
    assert model.lineage["settings"]["na_values"] == {"x": ["-999"]}
    assert model.schema.column("x").nullable
    assert "-" in model.schema.column("ward").categories
    frame = read_frame(path, model)
    assert frame["x"].isna().sum() == 12
    assert frame["ward"].isna().sum() == 0


def test_markers_in_a_numeric_target_are_dropped_rows_with_their_cause(tmp_path):
    rng = np.random.default_rng(0)
    lines = []
    for index in range(120):
        x = rng.normal()
        y = "?" if index in (5, 50) else ("" if index == 9 else f"{3 * x + rng.normal():.3f}")
        lines.append(f"{x:.3f},{y}")
    path = tmp_path / "numbers.csv"
    path.write_text("x,y\n" + "\n".join(lines) + "\n")
    model = mlwright.train(path, target="y", max_trials=1, models="lightgbm")
    assert model.task == "regression"
    assert model.lineage["data"]["dropped_rows"] == {
        "missing_target": 3,
        "missing_target_markers": {"": 1, "?": 2},
    }
    from mlwright.cli._shared import dropped_rows_line

    assert dropped_rows_line(model.lineage) == (
        "3 rows without a value of 'y' were left out of training (read as missing: 1 empty, 2 '?')."
    )


def test_bad_na_values_fail_before_training():
    with pytest.raises(ConfigError, match="na_values must be a list of strings"):
        mlwright.train(CREDIT_TRAIN, target="class", max_trials=1, na_values="?")
    with pytest.raises(
        ConfigError, match=r"'purpse', which .* does not have\. Did you mean 'purpose'"
    ):
        mlwright.train(CREDIT_TRAIN, target="class", max_trials=1, na_values={"purpse": ["?"]})
