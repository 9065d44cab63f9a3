"""`mlwright evaluate`, `compare`, `explain` and `report` through the real command line."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import re
import shlex
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


_BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.DOTALL)
_DOC_CHECKS = {
    "evaluate.md": ["roc_auc (primary)", "Threshold", "Verdict:", "treeshap"],
    "report.md": ["Wrote reports/credit-g.html"],
}


@pytest.mark.parametrize("page", sorted(_DOC_CHECKS))
def test_docs_examples_run(page, tmp_path):
    """Every shell and Python example of the page runs; key output lines are as shown."""
    text = (trained.REPO_ROOT / "docs" / page).read_text()
    (tmp_path / "examples").symlink_to(trained.REPO_ROOT / "examples")
    printed = []
    blocks = _BLOCK.findall(text)
    for index, (language, body) in enumerate(blocks):
        if language == "bash":
            for line in body.strip().splitlines():
                words = shlex.split(line)
                if words[0] == "cp":
                    shutil.copytree(tmp_path / words[2], tmp_path / words[3])
                    continue
                assert words[0] == "mlwright", line
                result = run_cli(*words[1:], cwd=tmp_path)
                assert result.returncode == 0, line + "\n" + result.stderr
                printed.append(result.stdout)
        elif language == "python":
            output = io.StringIO()
            with contextlib.chdir(tmp_path), contextlib.redirect_stdout(output):
                exec(compile(body, page, "exec"), {})
            following = blocks[index + 1] if index + 1 < len(blocks) else None
            if following is not None and following[0] == "":
                assert output.getvalue().strip() == following[1].strip()
    for needle in _DOC_CHECKS[page]:
        assert any(needle in out for out in printed), needle


def test_registry_models_get_their_evaluation_and_report_logged(in_tmp):
    train = run_cli(
        "train",
        trained.CREDIT_TRAIN,
        "--target",
        "class",
        "--models",
        "lightgbm",
        "--max-trials",
        "2",
        "--register",
        "credit",
        "--quiet",
        "--output",
        "m1",
        cwd=in_tmp,
    )
    assert train.returncode == 0, train.stderr
    result = run_cli(
        "evaluate", "models:/credit/1", TEST, "--resamples", "100", "--json", cwd=in_tmp
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert any("Logged the evaluation to MLflow run" in note for note in document["notes"])
    report = run_cli(
        "report",
        "models:/credit/1",
        "--data",
        TEST,
        "--output",
        "r/card.html",
        "--resamples",
        "100",
        cwd=in_tmp,
    )
    assert report.returncode == 0, report.stderr
    assert "Logged the report to MLflow run" in report.stdout

    from mlwright.registry import get_version, open_store

    store = open_store()
    run_id = get_version("credit", 1, store=store).run_id
    metrics = store.client.get_run(run_id).data.metrics
    assert metrics["test_roc_auc"] == pytest.approx(document["metrics"]["roc_auc"]["value"])
    assert "test_roc_auc_lower" in metrics
    logged = [item.path for item in store.client.list_artifacts(run_id, "evaluations")]
    assert len(logged) == 1
    assert logged[0].endswith(".json")
    report_files = {item.path for item in store.client.list_artifacts(run_id, "report")}
    assert report_files == {"report/card.html", "report/card.md"}
