"""`mlwright evaluate`, `compare`, `explain` and `report` through the real command line."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow  # trains small models once per session

_spec = importlib.util.spec_from_file_location(
    "_eval_trained_loader_e2e", Path(__file__).parents[1] / "evaluate" / "_trained.py"
)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
trained = _module.load_helper()
TEST = str(trained.CREDIT_TEST)


def run_cli(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlwright", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


@pytest.fixture(scope="module")
def model():
    return str(trained.model_path("lightgbm"))


def test_evaluate_json_with_sensitive_columns(model):
    result = run_cli(
        "evaluate",
        model,
        TEST,
        "--sensitive",
        "personal_status",
        "foreign_worker",
        "--json",
        "--resamples",
        "200",
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["metric"] == "roc_auc"
    roc = document["metrics"]["roc_auc"]
    assert roc["lower"] < roc["value"] < roc["upper"]
    assert [item["column"] for item in document["fairness"]] == [
        "personal_status",
        "foreign_worker",
    ]
    assert document["confusion_matrix"]["labels"] == ["bad", "good"]


def test_evaluate_prints_tables(model):
    result = run_cli("evaluate", model, TEST, "--resamples", "100")
    assert result.returncode == 0, result.stderr
    for text in (
        "roc_auc (primary)",
        "95% CI",
        "Per class",
        "Confusion matrix",
        "Expected calibration error",
    ):
        assert text in result.stdout


def test_threshold_for_saves_a_model_that_predict_uses(model, tmp_path):
    adjusted = tmp_path / "adjusted"
    result = run_cli(
        "evaluate",
        model,
        TEST,
        "--threshold-for",
        "recall=0.97",
        "--calibrate",
        "sigmoid",
        "--output",
        adjusted,
        "--resamples",
        "50",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert any("Threshold" in note for note in document["notes"])
    assert document["threshold"] is not None
    predictions = tmp_path / "predictions.csv"
    result = run_cli("predict", adjusted, TEST, "--output", predictions)
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(predictions)
    expected = (frame["proba_good"] >= document["threshold"]).map({True: "good", False: "bad"})
    assert (frame["prediction"] == expected).all()
    truth = pd.read_csv(TEST)["class"]
    recall = ((frame["prediction"] == "good") & (truth == "good")).sum() / (truth == "good").sum()
    assert recall >= 0.97


def test_threshold_in_place_on_a_local_copy(model, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(model, copy)
    result = run_cli("evaluate", copy, TEST, "--threshold-for", "cost=1:5", "--resamples", "50")
    assert result.returncode == 0, result.stderr
    assert "Saved the adjusted model" in result.stdout
    info = json.loads((copy / "model.json").read_text())
    assert info["decision_threshold"]["objective"] == "cost"


def test_compare_a_model_with_itself(model):
    result = run_cli("compare", model, model, TEST, "--resamples", "200", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["verdict"] == "not distinguishable"
    assert document["p_value"] == 1.0
    gate = run_cli("compare", model, model, TEST, "--resamples", "100", "--fail-unless-better")
    assert gate.returncode == 3
    assert "not distinguishable" in gate.stdout


def test_explain_a_row(model):
    result = run_cli("explain", model, TEST, "--row", "4", "--top", "5")
    assert result.returncode == 0, result.stderr
    assert "Row 4: predicted" in result.stdout
    assert "treeshap" in result.stdout
    document = json.loads(run_cli("explain", model, TEST, "--row", "4", "--json").stdout)
    assert len(document["contributions"]) == 20
    assert document["row"] == 4


def test_report_writes_html_and_markdown(model, tmp_path):
    output = tmp_path / "out" / "report.html"
    result = run_cli(
        "report",
        model,
        "--data",
        TEST,
        "--sensitive",
        "personal_status",
        "foreign_worker",
        "--output",
        output,
        "--resamples",
        "200",
    )
    assert result.returncode == 0, result.stderr
    html = output.read_text()
    markdown = output.with_suffix(".md").read_text()
    assert "Fairness: foreign_worker" in html
    assert "## Fairness" in markdown
    assert f"Wrote {output}" in result.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["evaluate", "{model}", "{nolabel}"], "no column 'class'"),
        (["evaluate", "{model}", TEST, "--sensitive", "nationality"], "['nationality']"),
        (["evaluate", "{model}", TEST, "--threshold-for", "accuracy"], "precision=0.9"),
        (["evaluate", "{model}", TEST, "--calibrate", "platt", "-o", "{tmp}/x"], "isotonic"),
        (["explain", "{model}", TEST, "--row", "999"], "0 to 249"),
        (["evaluate", "{tmp}/missing-model", TEST], "missing-model"),
        (["compare", "{model}", "{regression}", TEST], "different things"),
        (["evaluate", "{model}", TEST, "sex"], "Unexpected argument"),
    ],
)
def test_bad_input_gives_one_clear_message(model, tmp_path, args, needle):
    nolabel = tmp_path / "nolabel.csv"
    pd.read_csv(TEST).drop(columns=["class"]).to_csv(nolabel, index=False)
    values = {
        "model": model,
        "nolabel": nolabel,
        "tmp": tmp_path,
        "regression": trained.model_path("regression"),
    }
    result = run_cli(*[arg.format(**values) for arg in args])
    assert result.returncode == 2, result.stdout + result.stderr
    assert needle in result.stderr.replace("\n", " ")
    assert "Traceback" not in result.stderr
