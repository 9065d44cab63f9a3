"""`mlwright export --format onnx` and `mlwright predict --runtime`, through the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
CREDIT_TRAIN = REPO / "examples" / "credit-g" / "train.csv"
CREDIT_TEST = REPO / "examples" / "credit-g" / "test.csv"


def mlwright(*args, cwd: Path | None = None, timeout: float = 600):
    return subprocess.run(
        [sys.executable, "-m", "mlwright", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


def assert_user_error(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    text = " ".join(result.stderr.split())  # rich wraps long lines
    for fragment in fragments:
        assert fragment in text, result.stderr


def assert_same_predictions(graph: Path, model: Path, rows: Path, folder: Path) -> None:
    """`mlwright predict` of the exported graph and of the artifact give the same file."""
    outputs = folder / "onnx.csv", folder / "python.csv"
    for source, path in zip((graph, model), outputs, strict=True):
        result = mlwright("predict", source, rows, "--output", path)
        assert result.returncode == 0, result.stderr
    onnx_frame, python_frame = (pd.read_csv(path) for path in outputs)
    assert onnx_frame["prediction"].tolist() == python_frame["prediction"].tolist()
    np.testing.assert_allclose(
        onnx_frame.iloc[:, 1:].to_numpy(), python_frame.iloc[:, 1:].to_numpy(), atol=1e-5
    )


def _train(folder: Path, models: str) -> Path:
    output = folder / models.replace(",", "-")
    result = mlwright(
        "train", CREDIT_TRAIN, "--target", "class", "--max-trials", "2", "--models", models,
        "--seed", "0", "--no-track", "--output", output,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return output


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("export"), "lightgbm,xgboost")


@pytest.fixture(scope="module")
def exported(trained):
    graph = trained.parent / "credit.onnx"
    # No --data: the parity rows are the training data the lineage names.
    result = mlwright("export", trained, "--format", "onnx", "--output", graph)
    assert result.returncode == 0, result.stderr
    return graph, result


def test_export_writes_the_graph_and_reports_parity(exported):
    graph, result = exported
    assert graph.is_file()
    text = " ".join(result.stdout.split())
    assert "Parity with the Python pipeline on" in text
    assert "(750 of the data," in text
    assert "labels agree on 100.0%" in text
    assert f"Wrote {graph}" in text


def test_export_checks_on_the_data_given(trained, tmp_path):
    graph = tmp_path / "nested" / "model.onnx"
    result = mlwright("export", trained, "--output", graph, "--data", CREDIT_TEST)
    assert result.returncode == 0, result.stderr
    assert "(250 of the data," in " ".join(result.stdout.split())
    assert graph.is_file()


def test_predict_with_onnx_runtime_matches_python(trained, exported, tmp_path):
    graph, _ = exported
    with_onnx, with_python = tmp_path / "onnx.csv", tmp_path / "python.csv"
    result = mlwright("predict", graph, CREDIT_TEST, "--output", with_onnx, "--runtime", "onnx")
    assert result.returncode == 0, result.stderr
    assert "with onnxruntime" in result.stderr
    result = mlwright("predict", trained, CREDIT_TEST, "--output", with_python)
    assert result.returncode == 0, result.stderr
    onnx_frame, python_frame = pd.read_csv(with_onnx), pd.read_csv(with_python)
    assert list(onnx_frame.columns) == list(python_frame.columns)
    assert len(onnx_frame) == 250
    assert (onnx_frame["prediction"] == python_frame["prediction"]).all()
    np.testing.assert_allclose(
        onnx_frame[["proba_bad", "proba_good"]].to_numpy(),
        python_frame[["proba_bad", "proba_good"]].to_numpy(),
        atol=1e-5,
    )
    # auto picks onnx for an .onnx file.
    result = mlwright("predict", graph, CREDIT_TEST, "--output", tmp_path / "auto.csv")
    assert result.returncode == 0, result.stderr
    assert "with onnxruntime" in result.stderr


def test_a_one_row_file_reads_as_training_read_it(trained, exported, tmp_path):
    # A one-row file is where the automatic missing-value rule could read a cell differently
    # from training; the graph carries the training data's rule, as the artifact does.
    graph, _ = exported
    one_row = tmp_path / "one.csv"
    pd.read_csv(CREDIT_TEST).head(1).to_csv(one_row, index=False)
    assert_same_predictions(graph, trained, one_row, tmp_path)


def test_markers_read_as_in_training_on_both_runtimes(tmp_path, adult_like_csv):
    # '?' is a category of workclass but a missing value among hours' numbers; in a one-row
    # file both runtimes must read it so, as training did.
    train = adult_like_csv
    model = tmp_path / "model"
    result = mlwright(
        "train", train, "--target", "label", "--max-trials", "2", "--models", "lightgbm",
        "--seed", "0", "--no-track", "--output", model,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    graph = tmp_path / "model.onnx"
    result = mlwright("export", model, "--output", graph)
    assert result.returncode == 0, result.stderr
    rows = tmp_path / "rows.csv"
    rows.write_text("hours,workclass\n?,?\n")
    assert_same_predictions(graph, model, rows, tmp_path)


def test_an_unknown_format_is_a_user_error(trained, tmp_path):
    result = mlwright("export", trained, "--format", "pmml", "--output", tmp_path / "m.pmml")
    assert_user_error(result, "--format 'pmml' is not an export format; use --format onnx.")


def test_an_unconvertible_model_is_refused_and_nothing_is_written(tmp_path):
    model = _train(tmp_path, "knn")
    graph = tmp_path / "knn.onnx"
    result = mlwright("export", model, "--format", "onnx", "--output", graph)
    assert_user_error(result, "(family knn) does not convert to ONNX", "--models lightgbm")
    assert not graph.exists()


def test_an_output_that_cannot_be_written_is_a_user_error(trained, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = mlwright("export", trained, "--output", blocker / "model.onnx")
    assert_user_error(result, "Cannot write the ONNX graph to")


def test_predictions_that_cannot_be_written_are_a_user_error(exported, tmp_path):
    graph, _ = exported
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = mlwright("predict", graph, CREDIT_TEST, "--output", blocker / "p.csv")
    assert_user_error(result, "Cannot write predictions to")


def test_a_missing_model_is_a_user_error(tmp_path):
    result = mlwright("export", tmp_path / "nowhere", "--output", tmp_path / "m.onnx")
    assert_user_error(result, "nowhere")


def test_runtime_and_model_must_match(trained, exported, tmp_path):
    graph, _ = exported
    result = mlwright(
        "predict", trained, CREDIT_TEST, "-o", tmp_path / "p.csv", "--runtime", "onnx"
    )
    assert_user_error(result, "--runtime onnx needs the .onnx file", "mlwright export")
    result = mlwright(
        "predict", graph, CREDIT_TEST, "-o", tmp_path / "p.csv", "--runtime", "python"
    )
    assert_user_error(result, "is an ONNX graph, which --runtime python cannot run")
    result = mlwright("predict", graph, CREDIT_TEST, "-o", tmp_path / "p.csv", "--runtime", "java")
    assert_user_error(result, "--runtime must be auto, python or onnx; got 'java'.")
