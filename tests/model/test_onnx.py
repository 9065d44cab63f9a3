"""ONNX export (mlwright.model._onnx) and the onnxruntime-only runtime (mlwright.compiled).

Real data throughout: credit-g (numbers and categories), heart-h (real missing values), cmc
(multiclass), abalone (regression), diabetes (CatBoost on numbers); the refusals use mpg (a text
column), the k-NN family and CatBoost on categories; the linear family on credit-g, heart-h and
cpu_act.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pandas as pd
import pytest
from model_helpers import CREDIT_TEST, CREDIT_TRAIN, build_model

import mlwright
from mlwright.automl import _preprocess
from mlwright.compiled import CompiledModel, load_compiled
from mlwright.errors import ConfigError, DataError, MlwrightError, ModelError
from mlwright.model import _onnx
from mlwright.model._onnx import UnsupportedPartError, export_onnx


def _train(data, target, models, max_trials=2):
    return mlwright.train(data, target=target, max_trials=max_trials, models=models, seed=0)


@pytest.fixture(scope="module")
def credit():
    return _train(pd.read_csv(CREDIT_TRAIN), "class", "lightgbm,xgboost")


@pytest.fixture(scope="module")
def credit_graph(credit, tmp_path_factory):
    exported = export_onnx(credit, pd.read_csv(CREDIT_TEST))
    return exported, exported.save(tmp_path_factory.mktemp("onnx") / "credit.onnx")


def _awkward_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Test rows with a category missing, a number missing and a category never seen."""
    rows = frame.drop(columns=["class"], errors="ignore").head(30).copy()
    rows.loc[0, "checking_status"] = None
    rows.loc[1, "age"] = np.nan
    rows.loc[2, "purpose"] = "a purpose never seen in training"
    rows.loc[3, ["credit_history", "duration", "savings_status"]] = [None, np.nan, ""]
    return rows


def test_binary_graph_agrees_with_python_and_records_its_parity(credit, credit_graph):
    exported, path = credit_graph
    parity = exported.parity
    assert parity["data_rows"] == 250
    assert parity["probe_rows"] > 0  # rows with each column missing and each category unseen
    assert parity["max_abs_diff"] <= 1e-5
    assert parity["label_agreement"] == 1.0
    assert {member["family"] for member in exported.members} <= {"lightgbm", "xgboost"}
    assert sum(member["weight"] for member in exported.members) == pytest.approx(1.0)
    compiled = load_compiled(path)
    assert compiled.parity == parity
    assert compiled.task == "binary"
    assert compiled.classes == ["bad", "good"]
    assert compiled.feature_names == credit.feature_names

    rows = _awkward_rows(pd.read_csv(CREDIT_TEST))
    python = credit.predict_proba(rows).to_numpy()
    np.testing.assert_allclose(compiled.predict_proba(rows), python, rtol=0, atol=1e-5)
    assert list(compiled.predict(rows)) == list(credit.predict(rows))
    # One row as a dict, and as a list of dicts, as a service receives them.
    records = rows.head(4).to_dict(orient="records")
    np.testing.assert_allclose(compiled.predict_proba(records[3]), python[3:4], atol=1e-5)
    np.testing.assert_allclose(compiled.predict_proba(records), python[:4], atol=1e-5)


def test_graph_inputs_are_the_raw_columns_by_name(credit_graph):
    _, path = credit_graph
    compiled = load_compiled(path)
    inputs = {item.name: item.type for item in compiled.session.get_inputs()}
    assert inputs["checking_status"] == "tensor(string)"
    assert inputs["age"] == "tensor(double)"
    # Fed directly, without mlwright's feeding code: strings, "" and NaN for missing.
    feeds = compiled.inputs(pd.read_csv(CREDIT_TEST).head(2))
    feeds["checking_status"][0, 0] = ""
    feeds["age"][1, 0] = np.nan
    label, probabilities = compiled.session.run(["label", "probabilities"], feeds)
    assert label.shape == (2,)
    assert probabilities.shape == (2, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)


def test_the_runtime_loads_with_onnxruntime_alone(credit_graph):
    _, path = credit_graph
    script = (
        "import sys\n"
        "from mlwright.compiled import load_compiled\n"
        f"model = load_compiled({str(path)!r})\n"
        "print(model.predict({'checking_status': '<0', 'duration': 24, 'age': 30})[0])\n"
        "heavy = [m for m in ('sklearn', 'lightgbm', 'xgboost', 'catboost') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    label, heavy = result.stdout.strip().splitlines()
    assert label in ("bad", "good")
    assert heavy == "[]"


def test_rare_categories_merged_into_other(monkeypatch):
    # Beyond MAX_CATEGORIES the rarest categories share one "other" code, and so do categories
    # never seen in training; lowered here so that credit-g's purpose (10 values) has one.
    monkeypatch.setattr(_preprocess, "MAX_CATEGORIES", 4)
    model = _train(pd.read_csv(CREDIT_TRAIN), "class", "lightgbm,xgboost")
    purpose = next(s for s in model.predictor.preprocessor.specs_ if s.column == "purpose")
    assert purpose.n_codes == len(purpose.mapping) + 1
    exported = export_onnx(model, pd.read_csv(CREDIT_TEST))
    assert exported.parity["max_abs_diff"] <= 1e-5
    assert exported.parity["label_agreement"] == 1.0
    rows = pd.read_csv(CREDIT_TEST).drop(columns=["class"]).head(8)
    rows["purpose"] = "a purpose never seen in training"
    compiled = CompiledModel(exported.graph)
    np.testing.assert_allclose(
        compiled.predict_proba(rows), model.predict_proba(rows).to_numpy(), atol=1e-5
    )


def test_missing_values_in_training_data(bench_dataset):
    entry = bench_dataset("heart-h")
    train = pd.read_csv(entry["train"])
    assert train.isna().any().any()  # the point of this dataset
    model = _train(entry["train"], entry["target"], "lightgbm")
    exported = export_onnx(model, entry["test"])
    assert exported.parity["max_abs_diff"] <= 1e-5
    assert exported.parity["label_agreement"] == 1.0


def test_multiclass(bench_dataset):
    entry = bench_dataset("cmc")
    model = _train(entry["train"], entry["target"], "lightgbm,xgboost")
    exported = export_onnx(model, entry["test"])
    assert exported.parity["max_abs_diff"] <= 1e-5
    assert exported.parity["label_agreement"] == 1.0
    # On a small table a member serves as the average of its fold models: one graph each.
    assert any(member["graphs"] > 1 for member in exported.members)
    compiled = CompiledModel(exported.graph)
    test = pd.read_csv(entry["test"]).drop(columns=[entry["target"]])
    assert len(compiled.classes) == 3
    np.testing.assert_allclose(
        compiled.predict_proba(test), model.predict_proba(test).to_numpy(), atol=1e-5
    )
    assert list(compiled.predict(test)) == list(model.predict(test))


def test_regression(bench_dataset):
    entry = bench_dataset("abalone")
    model = _train(entry["train"], entry["target"], "lightgbm,xgboost")
    exported = export_onnx(model, entry["test"])
    parity = exported.parity
    assert "label_agreement" not in parity
    assert parity["max_rel_diff"] <= 1e-5
    compiled = CompiledModel(exported.graph)
    assert compiled.task == "regression"
    test = pd.read_csv(entry["test"]).drop(columns=[entry["target"]])
    predictions = compiled.predict(test)
    scale = max(1.0, float(np.abs(predictions).max()))
    np.testing.assert_allclose(predictions, model.predict(test), rtol=0, atol=1e-5 * scale)
    with pytest.raises(ModelError, match="regression"):
        compiled.predict_proba(test)


def test_catboost_on_numbers(bench_dataset):
    entry = bench_dataset("diabetes")
    model = _train(entry["train"], entry["target"], "catboost", max_trials=1)
    exported = export_onnx(model, entry["test"])
    assert {member["family"] for member in exported.members} == {"catboost"}
    assert exported.parity["max_abs_diff"] <= 1e-5
    assert exported.parity["label_agreement"] == 1.0


def test_a_text_column_is_refused_by_name(bench_dataset):
    entry = bench_dataset("mpg")
    model = _train(entry["train"], entry["target"], "lightgbm", max_trials=1)
    with pytest.raises(UnsupportedPartError, match="Column 'name' is used as text") as caught:
        export_onnx(model, entry["test"])
    assert "train without 'name' (drop it from the data)" in str(caught.value)


def test_every_part_that_does_not_convert_is_named_at_once(bench_dataset):
    entry = bench_dataset("mpg")
    model = _train(entry["train"], entry["target"], "knn", max_trials=1)
    with pytest.raises(UnsupportedPartError) as caught:
        export_onnx(model, entry["test"])
    message = str(caught.value)
    assert message.startswith("2 parts of this model do not convert to ONNX: column 'name'")
    assert "(family knn) does not convert to ONNX" in message
    assert "train without 'name'" in message
    assert "--models lightgbm,xgboost,linear" in message


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("credit-g", "categories one-hot, a heavy-tailed column log-compressed"),
        ("heart-h", "missing values, with their indicators"),
        ("cpu_act", "regression, six heavy-tailed columns"),
    ],
)
def test_the_linear_family_converts_to_double_precision(bench_dataset, name, what):
    entry = bench_dataset(name)
    model = _train(entry["train"], entry["target"], "linear", max_trials=1)
    exported = export_onnx(model, entry["test"])
    assert {member["family"] for member in exported.members} == {"linear"}
    # The encoder and the scores are computed in double precision, as in Python.
    key = "max_rel_diff" if model.task == "regression" else "max_abs_diff"
    assert exported.parity[key] <= 1e-12, what
    assert exported.parity.get("label_agreement", 1.0) == 1.0


def test_an_unconvertible_family_is_refused_by_member():
    model = _train(pd.read_csv(CREDIT_TRAIN), "class", "knn", max_trials=1)
    with pytest.raises(UnsupportedPartError) as caught:
        export_onnx(model, pd.read_csv(CREDIT_TEST))
    message = str(caught.value)
    assert "Ensemble member 'knn_uniform' (family knn) does not convert to ONNX" in message
    assert "--models lightgbm,xgboost" in message


def test_catboost_with_categories_is_refused():
    model = _train(pd.read_csv(CREDIT_TRAIN), "class", "catboost", max_trials=1)
    with pytest.raises(UnsupportedPartError, match="CatBoost's ONNX exporter does not support"):
        export_onnx(model, pd.read_csv(CREDIT_TEST))


def test_a_graph_that_disagrees_is_refused(credit, monkeypatch):
    # The measured difference is about 1e-7; with no tolerance at all the check must refuse.
    monkeypatch.setattr(_onnx, "TOLERANCE", 0.0)
    with pytest.raises(ModelError, match="disagrees with the Python pipeline"):
        export_onnx(credit, pd.read_csv(CREDIT_TEST))


def test_a_model_not_trained_by_mlwright_is_refused(credit_frames):
    train, _ = credit_frames
    model = build_model(train, "class")  # a plain scikit-learn pipeline as the predictor
    with pytest.raises(UnsupportedPartError, match="Only models trained by mlwright"):
        export_onnx(model, train)


def test_without_rows_to_check_the_export_asks_for_them(credit):
    # Trained from a DataFrame: the lineage names no file to read the parity rows from.
    with pytest.raises(DataError, match="--data"):
        export_onnx(credit)


@pytest.mark.parametrize("missing", ["onnx", "onnxmltools", "onnxruntime"])
def test_without_the_extra_the_export_says_what_to_install(
    credit, credit_graph, monkeypatch, missing
):
    monkeypatch.setitem(sys.modules, missing, None)  # import now raises ImportError
    with pytest.raises(ConfigError, match=r"ONNX export needs: pip install 'mlwright\[onnx\]'"):
        export_onnx(credit, pd.read_csv(CREDIT_TEST))
    if missing == "onnxruntime":
        _, path = credit_graph
        with pytest.raises(ConfigError, match=r"needs onnxruntime: pip install 'mlwright\[onnx\]'"):
            load_compiled(path)


def test_a_file_that_is_not_an_export_is_a_clear_error(tmp_path):
    with pytest.raises(MlwrightError, match="No ONNX file"):
        load_compiled(tmp_path / "missing.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a graph")
    with pytest.raises(ModelError, match="Could not load the ONNX graph"):
        load_compiled(broken)


def test_metadata_is_readable_without_mlwright(credit_graph):
    _, path = credit_graph
    meta = {entry.key: entry.value for entry in onnx.load(str(path)).metadata_props}
    assert meta["mlwright.task"] == "binary"
    assert meta["mlwright.target"] == "class"
    assert json.loads(meta["mlwright.columns"])[0] == ["checking_status", "categorical"]
    assert json.loads(meta["mlwright.parity"])["label_agreement"] == 1.0
    rule = json.loads(meta["mlwright.reading_rule"])
    assert set(rule) == {"default", "columns"}
    assert set(load_compiled(path).reading_rule["columns"]) >= {"checking_status", "age"}
