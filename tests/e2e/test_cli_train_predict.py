"""`mlwright train` and `mlwright predict` through the real command line (subprocesses)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
CREDIT_TRAIN = REPO / "examples" / "credit-g" / "train.csv"
CREDIT_TEST = REPO / "examples" / "credit-g" / "test.csv"
FAST = ["--max-trials", "3", "--models", "lightgbm", "--seed", "5", "--no-track"]


def mlwright(*args: str, cwd: Path | None = None, timeout: float = 600):
    # MLWRIGHT_HOME (the MLflow store of --track runs) is set per test where it matters.
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
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    output = tmp_path_factory.mktemp("cli") / "credit-g"
    result = mlwright("train", CREDIT_TRAIN, "--target", "class", *FAST, "--output", output)
    assert result.returncode == 0, result.stderr
    return output, result


def test_train_prints_the_score_with_spread_and_the_path(trained):
    output, result = trained
    assert "Validation roc_auc: 0." in result.stdout
    assert "±" in result.stdout
    assert f"Model saved to {output}" in result.stdout
    assert (output / "MANIFEST").is_file()


def test_predict_writes_one_row_per_input_row_in_order(trained, tmp_path):
    output, _ = trained
    predictions = tmp_path / "predictions.csv"
    result = mlwright("predict", output, CREDIT_TEST, "--output", predictions)
    assert result.returncode == 0, result.stderr
    with predictions.open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["prediction", "proba_bad", "proba_good"]
    frame = pd.read_csv(predictions)
    test = pd.read_csv(CREDIT_TEST)
    assert len(frame) == len(test)
    assert set(frame["prediction"]) <= {"bad", "good"}
    assert (frame["proba_bad"] + frame["proba_good"]).between(0.999999, 1.000001).all()

    import mlwright as library

    expected = library.load(output).predict_proba(library.data.read(CREDIT_TEST))
    pd.testing.assert_series_equal(
        frame["proba_good"], expected["good"], check_names=False, rtol=1e-9
    )


def test_small_chunks_give_the_same_file(trained, tmp_path):
    output, _ = trained
    whole, chunked = tmp_path / "whole.csv", tmp_path / "chunked.csv"
    assert mlwright("predict", output, CREDIT_TEST, "--output", whole).returncode == 0
    result = mlwright("predict", output, CREDIT_TEST, "--output", chunked, "--chunk-rows", "64")
    assert result.returncode == 0, result.stderr
    assert whole.read_text() == chunked.read_text()


@pytest.mark.slow
def test_max_trials_and_seed_make_training_reproducible(trained, tmp_path):
    output, _ = trained
    again = tmp_path / "again"
    result = mlwright("train", CREDIT_TRAIN, "--target", "class", *FAST, "--output", again)
    assert result.returncode == 0, result.stderr
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    assert mlwright("predict", output, CREDIT_TEST, "--output", first).returncode == 0
    assert mlwright("predict", again, CREDIT_TEST, "--output", second).returncode == 0
    assert first.read_text() == second.read_text()


def test_a_tampered_model_is_refused(trained, tmp_path):
    output, _ = trained
    copy = tmp_path / "tampered"
    shutil.copytree(output, copy)
    pickle_path = copy / "predictor.pkl"
    content = bytearray(pickle_path.read_bytes())
    content[len(content) // 3] ^= 0x20
    pickle_path.write_bytes(bytes(content))
    predictions = tmp_path / "p.csv"
    result = mlwright("predict", copy, CREDIT_TEST, "--output", predictions)
    assert_user_error(result, "predictor.pkl", "modified")
    assert not predictions.exists()


def test_a_missing_column_is_named(trained, tmp_path):
    output, _ = trained
    data = tmp_path / "no-amount.csv"
    pd.read_csv(CREDIT_TEST).drop(columns=["credit_amount"]).to_csv(data, index=False)
    predictions = tmp_path / "p.csv"
    result = mlwright("predict", output, data, "--output", predictions)
    assert_user_error(result, "'credit_amount' is missing")
    assert not predictions.exists()


def test_a_wrong_type_is_named_with_its_row(trained, tmp_path):
    output, _ = trained
    data = tmp_path / "bad-age.csv"
    frame = pd.read_csv(CREDIT_TEST).astype({"age": object})
    frame.loc[7, "age"] = "forty"
    frame.to_csv(data, index=False)
    result = mlwright("predict", output, data, "--output", tmp_path / "p.csv")
    assert_user_error(result, "'age'", "'forty'", "row 7")


def test_a_missing_model_is_a_user_error(tmp_path):
    result = mlwright("predict", tmp_path / "nope", CREDIT_TEST, "--output", tmp_path / "p.csv")
    assert_user_error(result, "does not exist")


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        (["--metric", "nope"], ["Unknown metric 'nope'", "roc_auc", "rmse"]),
        (["--metric", "rmse"], ["rmse", "binary", "roc_auc"]),
        (["--models", "lightgbm,bogus"], ["Unknown model family 'bogus'", "xgboost"]),
        (["--time-limit", "0"], ["positive number of seconds"]),
        (["--time-limit", "-3"], ["positive number of seconds"]),
    ],
)
def test_bad_options_exit_2_listing_the_valid_choices(options, fragments, tmp_path):
    result = mlwright(
        "train", CREDIT_TRAIN, "--target", "class", *options, "--no-track", cwd=tmp_path
    )
    assert_user_error(result, *fragments)
    assert not (tmp_path / "models").exists()


def test_an_unknown_target_exits_2(tmp_path):
    result = mlwright("train", CREDIT_TRAIN, "--target", "klass", "--max-trials", "1", "--no-track")
    assert_user_error(result, "'klass'", "class")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("budget", "tracking", "slack"),
    [
        # The budget (+10% allowed) with generous slack for a loaded test machine; the precise
        # figure is measured by benchmarks/automl.py.
        (20, "--no-track", 35),
        # The default path also opens an MLflow run (a new SQLite store here), inside the budget.
        (30, "--track", 45),
    ],
)
def test_the_time_limit_covers_the_whole_command(budget, tracking, slack, tmp_path, monkeypatch):
    monkeypatch.setenv("MLWRIGHT_HOME", str(tmp_path / ".mlwright"))
    began = time.monotonic()
    result = mlwright(
        "train",
        CREDIT_TRAIN,
        "--target",
        "class",
        "--time-limit",
        str(budget),
        tracking,
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    assert elapsed < slack, f"took {elapsed:.1f} s for a {budget} s budget"
    saved = list((tmp_path / "models").iterdir())
    assert len(saved) == 1
    assert saved[0].name.startswith("credit-g-")
    assert (saved[0] / "MANIFEST").is_file()


def _bash_blocks(page: Path) -> list[str]:
    blocks, inside, current = [], False, []
    for line in page.read_text().splitlines():
        if line.strip() == "```bash":
            inside, current = True, []
        elif inside and line.strip() == "```":
            inside = False
            blocks.append("\n".join(current))
        elif inside:
            current.append(line)
    return blocks


@pytest.mark.slow
@pytest.mark.parametrize("page", ["train.md", "predict.md"])
def test_the_docs_examples_run(page, tmp_path):
    (tmp_path / "examples").symlink_to(REPO / "examples")
    blocks = _bash_blocks(REPO / "docs" / page)
    assert blocks
    script = f'set -euo pipefail\nmlwright() {{ "{sys.executable}" -m mlwright "$@"; }}\n'
    script += "\n".join(blocks)
    result = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    if page == "predict.md":
        assert "prediction,proba_bad,proba_good" in result.stdout.splitlines()


def test_markers_as_labels_and_categories_through_the_command_line(tmp_path, adult_like_csv):
    data = adult_like_csv
    model = tmp_path / "model"
    result = mlwright("train", data, "--target", "label", *FAST, "--output", model)
    assert result.returncode == 0, result.stderr
    schema = json.loads((model / "schema.json").read_text())
    assert schema["na_values"] is None
    assert sorted(schema["class_labels"]) == ["+", "-"]
    workclass = next(c for c in schema["columns"] if c["name"] == "workclass")
    assert "?" in workclass["categories"]

    whole = tmp_path / "whole.csv"
    assert mlwright("predict", model, data, "--output", whole).returncode == 0
    predictions = pd.read_csv(whole, keep_default_na=False)
    assert set(predictions["prediction"]) == {"+", "-"}
    assert {"proba_+", "proba_-"} <= set(predictions.columns)
    # One row whose workclass is '?': alone, the column is nothing but a marker, but the model
    # reads it as at training, as the category '?'.
    lines = data.read_text().splitlines()
    position = next(i for i, line in enumerate(lines[1:]) if ",?," in line and line[0] != "?")
    one = tmp_path / "one.csv"
    one.write_text(lines[0] + "\n" + lines[position + 1] + "\n")
    single = tmp_path / "single.csv"
    result = mlwright("predict", model, one, "--output", single)
    assert result.returncode == 0, result.stderr
    got = pd.read_csv(single, keep_default_na=False)
    assert got["prediction"].iloc[0] == predictions["prediction"].iloc[position]
    assert got["proba_+"].iloc[0] == pytest.approx(predictions["proba_+"].iloc[position])


def test_na_values_given_at_training_apply_at_prediction(tmp_path, adult_like_csv):
    data = adult_like_csv
    model = tmp_path / "model"
    result = mlwright(
        "train", data, "--target", "label", *FAST, "--output", model, "--na-values", "?"
    )
    assert result.returncode == 0, result.stderr
    schema = json.loads((model / "schema.json").read_text())
    assert schema["na_values"] == ["?"]
    workclass = next(c for c in schema["columns"] if c["name"] == "workclass")
    assert "?" not in workclass["categories"]
    assert workclass["nullable"]
    assert json.loads((model / "lineage.json").read_text())["settings"]["na_values"] == ["?"]

    import mlwright as library

    loaded = library.load(model)
    frame = library.data.read(data, na_values=["?"]).drop(columns="label")
    predictions = tmp_path / "predictions.csv"
    assert mlwright("predict", model, data, "--output", predictions).returncode == 0
    written = pd.read_csv(predictions, keep_default_na=False)
    expected = loaded.predict_proba(frame)
    assert written["proba_+"].to_numpy() == pytest.approx(expected["+"].to_numpy())


def test_a_free_text_column_trains_and_predicts_through_the_command_line(tmp_path):
    """A full name whose title carries the signal: the name is text, read by the model."""
    import numpy as np

    rng = np.random.default_rng(3)
    chance = {"Mr.": 0.1, "Mrs.": 0.85, "Miss.": 0.8, "Master.": 0.6}
    first = ["John", "Mary", "Anna", "William", "James", "Ida", "Rose", "Karl", "Owen"]
    last = ["Smith", "Braund", "Cumings", "Allen", "Moran", "McCarthy", "Futrelle"]
    rows = []
    for index in range(400):
        title = rng.choice(list(chance), p=[0.5, 0.2, 0.2, 0.1])
        name = f"{rng.choice(last)}, {title} {rng.choice(first)} {rng.choice(first)} {index}"
        fare = round(float(rng.gamma(2.0, 15.0)), 2)
        rows.append({"name": name, "fare": fare, "survived": rng.random() < chance[title]})
    frame = pd.DataFrame(rows).replace({"survived": {True: "yes", False: "no"}})
    data = tmp_path / "passengers.csv"
    frame.to_csv(data, index=False)
    model = tmp_path / "model"
    result = mlwright("train", data, "--target", "survived", *FAST, "--output", model)
    assert result.returncode == 0, result.stderr
    schema = json.loads((model / "schema.json").read_text())
    assert {c["name"]: c["semantic_type"] for c in schema["columns"]}["name"] == "text"
    new = tmp_path / "new.csv"
    pd.DataFrame(
        {"name": ["Nobody, Mr. Tom Tim 9001", "Nobody, Mrs. Tom Tim 9002"], "fare": [20.0, 20.0]}
    ).to_csv(new, index=False)
    predictions = tmp_path / "predictions.csv"
    result = mlwright("predict", model, new, "--output", predictions)
    assert result.returncode == 0, result.stderr
    written = pd.read_csv(predictions)
    # Same fare, unseen names: only the title differs, and the model reads it.
    assert written["proba_yes"].iloc[1] > written["proba_yes"].iloc[0] + 0.3
