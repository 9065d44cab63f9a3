"""``mlwright profile``, ``check`` and ``run`` as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlwright.errors import EXIT_CHECK_FAILED

# Each command is a fresh interpreter that imports pandas, DuckDB, SciPy and matplotlib.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CREDIT = REPO / "examples" / "credit-g" / "train.csv"
CREDIT_TEST = REPO / "examples" / "credit-g" / "test.csv"


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlwright", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        env={**os.environ, "COLUMNS": "120"},
    )


@pytest.fixture(scope="module")
def leaky_csv(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    n = 300
    label = rng.choice(["paid", "default"], size=n)
    frame = pd.DataFrame(
        {
            "amount": rng.normal(1000, 200, n).round(2),
            "collection_status": np.where(label == "default", "in collection", "closed"),
            "label": label,
        }
    )
    path = tmp_path_factory.mktemp("leaky") / "loans.csv"
    frame.to_csv(path, index=False)
    return path


def test_profile_prints_a_table_and_writes_json_and_html(tmp_path):
    result = run_cli("profile", CREDIT, "--target", "class", "--output", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "credit_amount" in result.stdout
    assert "750 rows x 21 columns" in result.stdout
    document = json.loads((tmp_path / "out" / "profile.json").read_text())
    assert document["n_rows"] == 750
    assert document["task"] == "binary"
    assert document["associations"]
    page = (tmp_path / "out" / "profile.html").read_text()
    assert "data:image/png;base64," in page
    assert not re.search(r'(src|href)="https?:', page)


def test_profile_default_output_folder(in_tmp):
    result = run_cli("profile", CREDIT, cwd=in_tmp)
    assert result.returncode == 0, result.stderr
    assert (in_tmp / "mlwright-output" / "credit-g-train" / "profile.html").is_file()


def test_check_clean_data_exits_zero():
    result = run_cli("check", CREDIT, "--target", "class")
    assert result.returncode == 0, result.stderr
    assert "0 error(s)" in result.stdout


def test_check_json_is_machine_readable():
    result = run_cli("check", CREDIT, "--target", "class", "--test", CREDIT_TEST, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["target"] == "class"
    assert document["summary"]["error"] == 0
    for finding in document["findings"]:
        assert set(finding) >= {"kind", "severity", "columns", "evidence", "fix", "message"}


def test_check_exits_3_on_an_error_finding(leaky_csv):
    result = run_cli("check", leaky_csv, "--target", "label")
    assert result.returncode == EXIT_CHECK_FAILED, result.stdout + result.stderr
    assert "target_leakage" in result.stdout
    assert "collection_status" in result.stdout
    assert "Traceback" not in result.stderr


def test_check_json_with_errors_also_exits_3(leaky_csv):
    result = run_cli("check", leaky_csv, "--target", "label", "--json")
    assert result.returncode == EXIT_CHECK_FAILED
    findings = json.loads(result.stdout)["findings"]
    assert findings[0]["severity"] == "error"
    assert findings[0]["kind"] == "target_leakage"


# Small training bounds keep the run's train stage quick; the stores go to the test's folder.
TRAIN_BOUNDS = ("--time-limit", "20", "--models", "lightgbm", "--max-trials", "2")


def test_run_on_the_bundled_example_finishes(tmp_path):
    result = run_cli(
        "run",
        CREDIT,
        "--target",
        "class",
        "--output",
        tmp_path / "run",
        *TRAIN_BOUNDS,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    for stage in ("read", "profile", "check", "write", "train and register"):
        assert f": {stage}" in result.stdout
    assert "profile.html" in result.stdout
    assert (tmp_path / "run" / "profile.html").is_file()
    checks = json.loads((tmp_path / "run" / "checks.json").read_text())
    assert all(f["severity"] != "error" for f in checks)
    # Trained, registered as the dataset's champion, documented, and browsable in MLflow.
    assert (tmp_path / "run" / "model" / "MANIFEST").is_file()
    assert "models:/credit-g@champion -> version 1" in " ".join(result.stdout.split())
    assert "mlflow ui --backend-store-uri" in " ".join(result.stdout.split())
    assert (tmp_path / ".mlwright" / "mlflow.db").is_file()


def test_run_reports_check_errors_but_finishes(leaky_csv, tmp_path):
    result = run_cli(
        "run",
        leaky_csv,
        "--target",
        "label",
        "--output",
        tmp_path / "run",
        *TRAIN_BOUNDS,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "target_leakage" in result.stdout
    assert "carries on" in result.stdout
    page = (tmp_path / "run" / "profile.html").read_text()
    assert "target_leakage" in page


def test_check_on_a_sql_source(tmp_path):
    import sqlite3

    database = tmp_path / "shop.db"
    frame = pd.read_csv(CREDIT)
    with sqlite3.connect(database) as connection:
        frame.to_sql("loans", connection, index=False)
    result = run_cli(
        "check",
        f"sqlite:///{database}",
        "--query",
        "SELECT * FROM loans",
        "--target",
        "class",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["summary"]["error"] == 0


@pytest.fixture(scope="module")
def markers_csv(tmp_path_factory) -> Path:
    rng = np.random.default_rng(1)
    n = 200
    workclass = rng.choice(["Private", "State-gov", "?"], size=n)
    hours = rng.normal(40, 8, n).round(1).astype(object)
    hours[:7] = "?"
    label = rng.choice(["+", "-"], size=n)
    path = tmp_path_factory.mktemp("markers") / "adult.csv"
    pd.DataFrame({"hours": hours, "workclass": workclass, "label": label}).to_csv(path, index=False)
    return path


def test_profile_and_check_report_each_marker_per_column(markers_csv, tmp_path):
    kept = int((pd.read_csv(markers_csv, keep_default_na=False)["workclass"] == "?").sum())
    result = run_cli("profile", markers_csv, "--target", "label", "--output", tmp_path / "p")
    assert result.returncode == 0, result.stderr
    printed = " ".join(result.stdout.split())
    assert "hours: read as missing: 7 '?'" in printed
    assert f"workclass: kept as values: {kept} '?'" in printed
    document = json.loads((tmp_path / "p" / "profile.json").read_text())
    columns = {column["name"]: column for column in document["columns"]}
    assert columns["hours"]["missing_markers"] == {"?": 7}
    assert columns["workclass"]["kept_markers"] == {"?": kept}
    assert columns["label"]["kept_markers"] == {
        "-": int((pd.read_csv(markers_csv)["label"] == "-").sum())
    }

    result = run_cli("check", markers_csv, "--target", "label", "--json")
    assert result.returncode == 0, result.stderr
    findings = json.loads(result.stdout)["findings"]
    missing = next(f for f in findings if f["kind"] == "missing_values")
    assert missing["columns"] == ["hours"]
    assert missing["evidence"]["markers"] == {"?": 7}
    kept_finding = next(
        f for f in findings if f["kind"] == "kept_markers" and f["columns"] == ["workclass"]
    )
    assert kept_finding["severity"] == "info"
    assert kept_finding["message"] == (
        f"Column 'workclass' has {kept:,} cells '?' kept as a category (the column holds "
        "text). If '?' means missing, pass --na-values '?'."
    )

    result = run_cli("check", markers_csv, "--target", "label", "--json", "--na-values", "?")
    assert result.returncode == 0, result.stderr
    findings = json.loads(result.stdout)["findings"]
    markers = {
        f["columns"][0]: f["evidence"].get("markers")
        for f in findings
        if f["kind"] == "missing_values"
    }
    assert markers == {"hours": {"?": 7}, "workclass": {"?": kept}}
    assert not [f for f in findings if f["kind"] == "kept_markers"]  # the rule is explicit
