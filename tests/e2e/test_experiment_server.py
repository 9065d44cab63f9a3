"""A real server splits loopback traffic between two registered versions of credit-g, the
outcomes come back through POST /outcome, and the analysis promotes the better arm.

The "better" arm is known by construction: the simulated users convert at 10% after a
champion answer and at 25% after a challenger answer (the truth the test plants), so the
always-valid test must find the challenger and --promote-winner must move the alias to it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))

from serve_helpers import CREDIT_TEST, CREDIT_TRAIN, running  # noqa: E402

pytestmark = pytest.mark.slow


def _register_two_versions(tracking_uri: str, workdir: Path) -> None:
    import mlwright
    from mlwright.data import read
    from mlwright.registry import promote, start_training_run

    frame = read(str(CREDIT_TRAIN))
    for seed, alias in ((0, "champion"), (1, "challenger")):
        model = mlwright.train(
            frame,
            target="class",
            models=["lightgbm"],
            max_trials=2,
            seed=seed,
            output=str(workdir / f"model-{seed}"),
        )
        run = start_training_run(data=frame, settings={}, tracking_uri=tracking_uri)
        with run:
            run.log_model(model, data=frame)
            version = run.register("credit")
        promote("credit", version.version, alias=alias, tracking_uri=tracking_uri)


def _cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "mlwright", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _wait_for_arm(client: httpx.Client, record: dict, version: str) -> None:
    """Experiments are picked up within seconds; wait (bounded) until the arm answers."""
    deadline = time.monotonic() + 30
    i = 0
    while time.monotonic() < deadline:
        i += 1
        answer = client.post(
            "/predict", json={"records": [record]}, headers={"x-unit-key": f"probe-{i}"}
        ).json()
        if answer["version"] == version:
            return
        time.sleep(0.05)
    raise AssertionError(f"no answer from version {version} within 30 s")


def test_ab_experiment_routes_and_promotes_the_better_version(tmp_path, monkeypatch) -> None:
    from mlwright.data import read
    from mlwright.registry import get_model

    # A store named by URI keeps MLflow's default artifact root, ./mlruns of the process that
    # creates an experiment: run from tmp_path, so that is not the repository.
    monkeypatch.chdir(tmp_path)

    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    log_uri = f"sqlite:///{tmp_path / 'predictions.db'}"
    env = {
        **os.environ,
        "MLWRIGHT_TRACKING_URI": tracking_uri,
        "MLWRIGHT_HOME": str(tmp_path / "home"),
    }
    _register_two_versions(tracking_uri, tmp_path)
    test = read(str(CREDIT_TEST))
    features = test.drop(columns=["class"])
    records = features.astype(object).where(features.notna(), None).to_dict(orient="records")
    labels = test["class"].tolist()

    with (
        running(["models:/credit@champion"], env, tmp_path, "--log", log_uri) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        _cli(
            env,
            tmp_path,
            "experiment",
            "start",
            "ab",
            "--model",
            "credit",
            "--arms",
            "champion=0.5,challenger=0.5",
            "--unit-key",
            "user_id",
            "--mde",
            "0.05",
            "--log",
            log_uri,
        )
        _wait_for_arm(client, records[0], "2")
        rng = np.random.default_rng(0)
        outcomes, feedback, versions = [], [], {}
        for i in range(1200):
            unit = f"user-{i}"
            row = i % len(records)
            answer = client.post(
                "/predict", json={"records": [records[row]]}, headers={"x-unit-key": unit}
            )
            assert answer.status_code == 200, answer.text
            body = answer.json()
            versions[unit] = body["version"]
            rate = 0.25 if body["version"] == "2" else 0.10
            outcomes.append(
                {
                    "experiment": "ab",
                    "unit": unit,
                    "metric": "conversion",
                    "value": int(rng.random() < rate),
                }
            )
            feedback.append({"request_id": body["request_id"], "actual": labels[row]})
        # Sticky: the same users get the same version again.
        for i in range(0, 1200, 37):
            again = client.post(
                "/predict", json={"records": [records[0]]}, headers={"x-unit-key": f"user-{i}"}
            ).json()
            assert again["version"] == versions[f"user-{i}"]
        share = np.mean([v == "2" for v in versions.values()])
        assert 0.45 < share < 0.55
        recorded = client.post("/outcome", json=outcomes)
        assert recorded.status_code == 200, recorded.text
        assert recorded.json() == {"recorded": {"ab": 1200}}
        assert client.post("/feedback", json={"items": feedback}).status_code == 200
        bad = client.post(
            "/outcome", json={"experiment": "nope", "unit": "u", "metric": "c", "value": 1}
        )
        assert bad.status_code == 404
        listed = client.get("/experiments").json()["experiments"]
        assert listed[0]["name"] == "ab"
        assert listed[0]["arm_errors"] == {"champion": 0, "challenger": 0}
        time.sleep(0.5)  # the log writer commits every 50 ms

        analysed = _cli(
            env,
            tmp_path,
            "experiment",
            "analyze",
            "ab",
            "--promote-winner",
            "--json",
            "--log",
            log_uri,
        )
        result = json.loads(analysed.stdout)
        assert result["decision"] == "challenger wins", result
        assert result["promoted"] == "credit/2"
        assert result["srm"]["mismatch"] is False
        seq = result["tests"]["conversion"]["challenger"]["sequential"]
        assert seq["lower"] <= 0.15 <= seq["upper"]
        assert result["arms"]["champion"]["labelled"] > 500
        assert result["arms"]["challenger"]["accuracy"] > 0.6
        assert all(check["ok"] for check in result["guardrails"]["challenger"])
        assert result["mlflow_run"]
        assert str(get_model("credit", tracking_uri=tracking_uri).aliases["champion"]) == "2"

        # Shadow mode: the caller always sees the control; the other arm is logged aside.
        _cli(env, tmp_path, "experiment", "stop", "ab", "--log", log_uri)
        _cli(
            env,
            tmp_path,
            "experiment",
            "start",
            "shadow",
            "--model",
            "credit",
            "--shadow",
            "--arms",
            "champion=1,challenger=0",
            "--ref",
            "champion=models:/credit/2",
            "--ref",
            "challenger=models:/credit/1",
            "--log",
            log_uri,
        )
        _wait_for_arm(client, records[0], "2")
        time.sleep(2.5)  # let the stopped experiment's definitions refresh away fully
        ids = [client.post("/predict", json={"records": [records[i]]}).json() for i in range(20)]
        assert {answer["version"] for answer in ids} == {"2"}
        time.sleep(0.5)
    from mlwright.serve import read_predictions

    logged = read_predictions(log_uri, model="credit")
    shadow = logged[logged["request_id"].isin([a["request_id"] for a in ids])]
    assert sorted(set(shadow["arm"])) == ["champion", "shadow:challenger"]
    assert set(shadow.loc[shadow["arm"] == "shadow:challenger", "version"]) == {"1"}
