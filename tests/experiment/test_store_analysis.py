"""Experiment store, outcomes and the analysis on a synthetic prediction log."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from mlwright.experiment import (
    ExperimentError,
    ExperimentStore,
    analyze,
    assign,
    get_experiment,
    record_outcomes,
    start_experiment,
    stop_experiment,
)
from mlwright.serve._log import SQLiteLogStore


def _log(tmp_path, experiment, n_units, rates, seed=0, latency=None):
    """Write one logged request per unit (arm by the sticky hash) and its conversion."""
    rng = np.random.default_rng(seed)
    uri = f"sqlite:///{tmp_path / 'predictions.db'}"
    store = SQLiteLogStore(tmp_path / "predictions.db")
    rows, outcomes = [], []
    for i in range(n_units):
        unit = f"user-{i}"
        arm = assign(unit, experiment.weights, salt=experiment.name)
        lat = (latency or {}).get(arm, 2.0)
        rows.append(
            (
                f"r{i}",
                0,
                experiment.started + 1 + i * 1e-3,
                experiment.model,
                "1",
                arm,
                "{}",
                json.dumps(int(rng.random() < 0.5)),
                None,
                lat,
            )
        )
        outcomes.append(
            {
                "request_id": f"r{i}",
                "metric": "conversion",
                "value": float(rng.random() < rates[arm]),
                "timestamp": experiment.started + 2 + i * 1e-3,
            }
        )
    store.write(rows)
    store.close()
    return uri, outcomes


def _start(uri, **kwargs):
    return start_experiment(
        "exp1",
        model="credit",
        references={"champion": "/m/a", "challenger": "/m/b"},
        log=uri,
        **kwargs,
    )


def test_lifecycle_and_decision(tmp_path) -> None:
    uri = f"sqlite:///{tmp_path / 'predictions.db'}"
    experiment = _start(uri, unit_key="user_id")
    assert get_experiment("exp1", log=uri).arms[1].reference == "/m/b"
    with pytest.raises(ExperimentError, match="already under experiment"):
        start_experiment(
            "exp2", model="credit", references={"champion": "a", "challenger": "b"}, log=uri
        )
    uri, outcomes = _log(tmp_path, experiment, 6000, {"champion": 0.10, "challenger": 0.16})
    assert record_outcomes("exp1", outcomes, log=uri) == 6000
    result = analyze("exp1", log=uri, record=False)
    assert result.primary == "conversion"
    assert result.winner == "challenger"
    assert result.decision == "challenger wins"
    assert not result.srm["mismatch"]
    seq = result.tests["conversion"]["challenger"]["sequential"]
    assert seq["lower"] <= 0.06 <= seq["upper"]
    assert result.arms["champion"]["labelled"] == 0
    assert stop_experiment("exp1", log=uri).status == "stopped"
    assert ExperimentStore(uri).get("exp1").result["decision"] == "challenger wins"


def test_no_difference_and_latency_guardrail(tmp_path) -> None:
    uri = f"sqlite:///{tmp_path / 'predictions.db'}"
    experiment = _start(uri)
    uri, outcomes = _log(
        tmp_path,
        experiment,
        3000,
        {"champion": 0.1, "challenger": 0.1},
        latency={"champion": 2.0, "challenger": 9.0},
    )
    record_outcomes("exp1", outcomes, log=uri)
    result = analyze("exp1", log=uri, record=False)
    assert result.winner is None
    assert result.decision.startswith("stopped: challenger fails the guardrail(s) latency_p95")


def test_outcomes_by_unit_resolve_by_hash(tmp_path) -> None:
    uri = f"sqlite:///{tmp_path / 'predictions.db'}"
    experiment = _start(uri, unit_key="user_id")
    record_outcomes("exp1", [{"unit": "u7", "metric": "revenue", "value": 3.5}], log=uri)
    rows = ExperimentStore(uri).outcomes(experiment)
    assert rows[0][2] == assign("u7", experiment.weights, salt="exp1")


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ({"metric": "c", "value": 1}, "neither a request_id nor a unit"),
        ({"request_id": "r", "value": 1}, "no metric name"),
        ({"request_id": "r", "metric": "c", "value": "x"}, "finite numbers"),
    ],
)
def test_bad_outcomes(tmp_path, item, fragment) -> None:
    uri = f"sqlite:///{tmp_path / 'p.db'}"
    _start(uri)
    with pytest.raises(ExperimentError, match=fragment):
        record_outcomes("exp1", [item], log=uri)


def _cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "mlwright", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.mark.slow
def test_cli_plan_start_outcomes_analyze(tmp_path) -> None:
    out = _cli("experiment", "plan", "--baseline", "0.1", "--mde", "0.01", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["n_control"] == 14745
    bad = _cli("experiment", "plan", "--baseline", "0.1", "--mde", "0", cwd=tmp_path)
    assert bad.returncode == 2
    assert "must not be zero" in bad.stderr + bad.stdout
    uri = f"sqlite:///{tmp_path / 'predictions.db'}"
    started = _cli(
        "experiment",
        "start",
        "e1",
        "--model",
        "m",
        "--ref",
        "champion=/a",
        "--ref",
        "challenger=/b",
        "--log",
        uri,
        cwd=tmp_path,
    )
    assert started.returncode == 0, started.stderr
    (tmp_path / "o.csv").write_text("unit,value\nu1,1\nu2,0\n")
    imported = _cli(
        "experiment",
        "outcomes",
        "e1",
        str(tmp_path / "o.csv"),
        "--metric",
        "buy",
        "--log",
        uri,
        cwd=tmp_path,
    )
    assert imported.returncode == 0, imported.stderr
    assert "Recorded 2 outcomes" in imported.stdout
    missing = _cli("experiment", "status", "nope", "--log", uri, cwd=tmp_path)
    assert missing.returncode == 2
    assert "no experiment called 'nope'" in missing.stderr + missing.stdout
    nometric = _cli(
        "experiment", "outcomes", "e1", str(tmp_path / "o.csv"), "--log", uri, cwd=tmp_path
    )
    assert nometric.returncode == 2
    assert "no 'metric' column" in nometric.stderr + nometric.stdout


def test_error_rate_guardrail_stops_a_failing_arm(tmp_path) -> None:
    uri = f"sqlite:///{tmp_path / 'predictions.db'}"
    experiment = _start(uri)
    uri, outcomes = _log(tmp_path, experiment, 4000, {"champion": 0.10, "challenger": 0.16})
    record_outcomes("exp1", outcomes, log=uri)
    # The challenger failed on 120 requests, the champion on 5.
    errors = [
        {"request_id": f"e{i}", "arm": "challenger", "metric": "error", "value": 1}
        for i in range(120)
    ]
    errors += [
        {"request_id": f"f{i}", "arm": "champion", "metric": "error", "value": 1} for i in range(5)
    ]
    record_outcomes("exp1", errors, log=uri)
    result = analyze("exp1", log=uri, record=False)
    assert "error" not in result.tests
    check = {g["name"]: g for g in result.guardrails["challenger"]}["error_rate"]
    assert not check["ok"]
    assert result.winner is None
    assert result.decision == "stopped: challenger fails the guardrail(s) error_rate"


def test_analysis_is_recorded_in_mlflow(tmp_path, monkeypatch) -> None:
    """Each analysis is an MLflow run of the experiment 'mlwright-experiments': the
    definition as parameters, per-arm figures and tests as metrics, the decision as a tag and
    the whole result as a JSON artifact; the per-arm intervals hold their means."""
    from mlflow.tracking import MlflowClient

    # A store named by URI keeps MLflow's default artifact root, ./mlruns of the process that
    # creates an experiment: run from tmp_path, so that is not the repository.
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'predictions.db'}"
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment = _start(uri, unit_key="user_id", metric="conversion", mde=0.05)
    uri, outcomes = _log(tmp_path, experiment, 4000, {"champion": 0.10, "challenger": 0.18})
    record_outcomes("exp1", outcomes, log=uri)
    before = ExperimentStore(uri).get("exp1").result
    unsaved = analyze("exp1", log=uri, record=False, save=False)
    assert ExperimentStore(uri).get("exp1").result == before  # save=False leaves no result
    result = analyze("exp1", log=uri, tracking_uri=tracking)
    assert result.decision == unsaved.decision == "challenger wins"
    for arm in ("champion", "challenger"):
        metric = result.arms[arm]["metrics"]["conversion"]
        assert metric["lower"] < metric["mean"] < metric["upper"]
        assert metric["upper"] - metric["lower"] < 0.05  # ~2,000 units per arm

    client = MlflowClient(tracking_uri=tracking)
    run = client.get_run(result.mlflow_run)
    assert client.get_experiment(run.info.experiment_id).name == "mlwright-experiments"
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlwright.experiment"] == "exp1"
    assert run.data.tags["mlwright.model"] == "credit"
    assert run.data.tags["mlwright.decision"] == "challenger wins"
    params = run.data.params
    assert params["arms"] == "champion=0.5,challenger=0.5"
    assert params["references"] == "champion=/m/a,challenger=/m/b"
    assert params["unit_key"] == "user_id"
    assert params["primary_metric"] == "conversion"
    metrics = run.data.metrics
    for arm in ("champion", "challenger"):
        assert metrics[f"{arm}.requests"] == result.arms[arm]["requests"] > 0
        assert metrics[f"{arm}.latency_p95_ms"] == pytest.approx(result.arms[arm]["latency_p95_ms"])
    seq = result.tests["conversion"]["challenger"]["sequential"]
    assert metrics["conversion.challenger.always_valid_p"] == pytest.approx(seq["p_value"])
    assert metrics["conversion.challenger.difference"] == pytest.approx(seq["difference"])
    local = client.download_artifacts(result.mlflow_run, "experiment_analysis.json", str(tmp_path))
    with open(local) as handle:
        stored = json.load(handle)
    assert stored["decision"] == "challenger wins"
    assert stored["mlflow_run"] is None or stored["mlflow_run"] == result.mlflow_run
    assert ExperimentStore(uri).get("exp1").result["mlflow_run"] == result.mlflow_run
