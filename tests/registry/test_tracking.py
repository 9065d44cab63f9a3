"""Every training is an MLflow run holding its settings, scores, data and artifact."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlwright.errors import RegistryError
from mlwright.model import load
from mlwright.registry import open_store, start_training_run

from .conftest import CREDIT_TRAIN
from .helpers import logged_run


@pytest.fixture
def store(store_home):
    return open_store()


def test_a_finished_run_records_everything(store, artifact):
    run = logged_run(artifact, store=store)
    recorded = store.client.get_run(run.run_id)
    assert recorded.info.status == "FINISHED"
    params, metrics, tags = recorded.data.params, recorded.data.metrics, recorded.data.tags
    assert params["target"] == "class"
    assert params["data.n_rows"] == "750"
    assert params["task"] == "binary"
    assert metrics["validation_roc_auc"] == pytest.approx(0.75)
    assert metrics["validation_roc_auc_std"] == pytest.approx(0.02)
    folds = store.client.get_metric_history(run.run_id, "validation_roc_auc_fold")
    assert [point.step for point in folds] == [0, 1, 2]
    assert metrics["data_findings_info"] == 1
    assert tags["mlwright.version"]
    assert tags["mlwright.data.fingerprint"].startswith("sha256:")
    assert tags["mlwright.data.source"] == str(CREDIT_TRAIN)

    [dataset_input] = recorded.inputs.dataset_inputs
    fingerprint = tags["mlwright.data.fingerprint"]
    assert dataset_input.dataset.digest == fingerprint.removeprefix("sha256:")[:32]
    assert json.loads(dataset_input.dataset.profile)["fingerprint"] == fingerprint
    assert json.loads(dataset_input.dataset.source)["uri"] == CREDIT_TRAIN.as_uri()
    assert dataset_input.tags[0].value == "training"

    top = {item.path for item in store.client.list_artifacts(run.run_id)}
    assert {"model", "leaderboard.json", "schema.json", "findings.json", "data"} <= top
    logged = {item.path for item in store.client.list_artifacts(run.run_id, "model")}
    assert {"model/MANIFEST", "model/MLmodel", "model/predictor.pkl"} <= logged
    assert load(f"runs:/{run.run_id}/model").target == "class"


def test_failures_and_interrupts_end_the_run(store):
    run = start_training_run(data=str(CREDIT_TRAIN), settings={"target": "x"}, store=store)
    with pytest.raises(ValueError, match="boom"), run:
        raise ValueError("boom")
    failed = store.client.get_run(run.run_id)
    assert failed.info.status == "FAILED"
    assert failed.data.tags["mlwright.error"] == "ValueError: boom"

    run = start_training_run(data=str(CREDIT_TRAIN), settings={"target": "x"}, store=store)
    with pytest.raises(KeyboardInterrupt), run:
        raise KeyboardInterrupt
    assert store.client.get_run(run.run_id).info.status == "KILLED"


def test_nothing_is_registered_before_the_model_is_logged(store):
    run = start_training_run(data=str(CREDIT_TRAIN), settings={"target": "x"}, store=store)
    with pytest.raises(RegistryError, match="nothing was registered"):
        run.register("credit")
    assert store.client.search_registered_models() == []


def test_runs_of_dead_processes_are_marked_killed(store):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = finished.stdout.strip()
    orphan = start_training_run(data=str(CREDIT_TRAIN), settings={"target": "x"}, store=store)
    store.client.set_tag(orphan.run_id, "mlwright.pid", dead_pid)
    alive = start_training_run(data=str(CREDIT_TRAIN), settings={"target": "x"}, store=store)
    assert store.client.get_run(orphan.run_id).info.status == "KILLED"
    assert (
        "ended without closing" in store.client.get_run(orphan.run_id).data.tags["mlwright.error"]
    )
    # The run of this (live) process is left alone.
    assert store.client.get_run(alive.run_id).info.status == "RUNNING"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_commit_is_tagged_inside_a_repository(store, tmp_path, monkeypatch):
    repository = tmp_path / "project"
    repository.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], cwd=repository, check=True)
    (repository / "train.py").write_text("print('hi')\n")
    subprocess.run([*git, "add", "train.py"], cwd=repository, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "first"], cwd=repository, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repository, capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    monkeypatch.chdir(repository)
    run = start_training_run(data=str(CREDIT_TRAIN), settings={"target": "x"}, store=store)
    tags = store.client.get_run(run.run_id).data.tags
    assert tags["mlflow.source.git.commit"] == head
    assert tags["mlwright.git.dirty"] == "false"
    monkeypatch.chdir(Path(tmp_path))
    run = start_training_run(data=str(CREDIT_TRAIN), settings={"target": "x"}, store=store)
    assert "mlflow.source.git.commit" not in store.client.get_run(run.run_id).data.tags


def test_an_evaluation_is_recorded_on_the_models_run(store, artifact):
    from mlwright.evaluate import evaluate
    from mlwright.registry import log_evaluation, promote, register_version

    from .conftest import CREDIT_TEST

    run = logged_run(artifact, store=store)
    register_version("credit", run_id=run.run_id, store=store)
    promote("credit", 1, store=store)
    model = load("models:/credit@champion")
    evaluation = evaluate(model, str(CREDIT_TEST), n_resamples=50)
    assert log_evaluation("models:/credit@champion", evaluation, str(CREDIT_TEST)) == run.run_id
    assert log_evaluation(str(artifact), evaluation, str(CREDIT_TEST)) is None
    recorded = store.client.get_run(run.run_id)
    assert recorded.data.metrics["test_roc_auc"] == pytest.approx(
        evaluation.metrics["roc_auc"].value
    )
    assert recorded.data.metrics["test_rows"] == 250
    assert recorded.data.tags["mlwright.evaluated_on"] == str(CREDIT_TEST)
    files = [item.path for item in store.client.list_artifacts(run.run_id, "evaluations")]
    assert len(files) == 1
    assert files[0].endswith("-test.csv.json")
