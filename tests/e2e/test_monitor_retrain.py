"""Retraining with the registry: a challenger is promoted only when compare says it is better.

Real MLflow store (SQLite), real prediction log, real training (LightGBM, 2 trials).
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def adult(bench_dataset):
    from mlwright.data import read

    entry = bench_dataset("adult")
    return read(entry["train"]), read(entry["test"]), entry["target"]


@pytest.fixture
def registry_env(tmp_path, monkeypatch):
    # A store named by URI keeps MLflow's default artifact root, ./mlruns of the process that
    # creates an experiment: run from tmp_path, so that is not the repository.
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLWRIGHT_TRACKING_URI", uri)
    monkeypatch.setenv("MLWRIGHT_HOME", str(tmp_path / "home"))
    return uri


def _register_champion(model, frame, uri):
    from mlwright.registry import promote, start_training_run

    run = start_training_run(data=frame, settings={}, tracking_uri=uri, run_name="champion")
    with run:
        run.log_model(model, data=frame)
        version = run.register("adult")
    promote("adult", version.version, tracking_uri=uri)
    return version.version


def _log_with_feedback(model, frame, target, log_uri, labels):
    from mlwright.monitor import record_feedback
    from mlwright.serve import PredictionLog, open_log_store

    log = PredictionLog(open_log_store(log_uri))
    features = frame.drop(columns=[target])
    records = features.astype(object).where(features.notna(), None).to_dict(orient="records")
    predictions = model.predict(features)
    probabilities = model.predict_proba(features).to_dict(orient="records")
    items = []
    for start in range(0, len(records), 200):
        request_id = f"r{start}"
        stop = start + 200
        log.append(
            request_id,
            "adult",
            "1",
            records[start:stop],
            list(predictions[start:stop]),
            probabilities[start:stop],
            1.0,
        )
        items.extend(
            {"request_id": request_id, "row": row, "actual": label}
            for row, label in enumerate(labels[start:stop])
        )
    log.close()
    record_feedback(log_uri, items)


@pytest.mark.slow
def test_challenger_promoted_only_when_better(adult, registry_env, tmp_path):
    import mlwright
    from mlwright.monitor import retrain
    from mlwright.registry import get_model, open_store

    train, test, target = adult
    frame = train.sample(5000, random_state=0)
    model = mlwright.train(
        frame, target=target, models="lightgbm", max_trials=2, output=tmp_path / "champion", seed=0
    )
    assert _register_champion(model, frame, registry_env) == 1
    overrides = {"max_trials": 2, "models": "lightgbm"}

    # Same world: new labelled rows with the true outcomes. The challenger is not better.
    same = test.sample(3000, random_state=1).reset_index(drop=True)
    kept = retrain(
        "models:/adult@champion",
        data=same,
        promote="if-better",
        overrides=overrides,
        output=tmp_path / "challenger-same",
    )
    assert kept.comparison["verdict"] != "better"
    assert not kept.promoted
    assert kept.decision == "kept champion"
    info = get_model("adult")
    assert info.aliases == {"champion": 1, "challenger": 2}

    # A changed world: for men the outcome flipped. Logged features + feedback labels.
    log_uri = f"sqlite:///{tmp_path / 'predictions.db'}"
    shifted = test.sample(4000, random_state=2).reset_index(drop=True)
    labels = shifted[target].to_numpy().copy()
    men = (shifted["sex"] == "Male").to_numpy()
    labels[men] = np.where(labels[men] == ">50K", "<=50K", ">50K")
    _log_with_feedback(model, shifted, target, log_uri, list(labels))
    promoted = retrain(
        "models:/adult@champion",
        from_log=log_uri,
        promote="if-better",
        overrides=overrides,
        output=tmp_path / "challenger-shifted",
    )
    assert promoted.comparison["verdict"] == "better"
    assert promoted.promoted
    assert promoted.n_holdout == pytest.approx(0.3 * 4000, abs=2)
    info = get_model("adult")
    assert info.aliases["champion"] == 3
    assert "challenger" not in info.aliases  # the promoted challenger is the champion now

    # The decision and its evidence are in the challenger's MLflow run.
    run = open_store(registry_env).client.get_run(promoted.registered["run_id"])
    assert run.data.tags["mlwright.retrain.decision"] == "promoted"
    assert run.data.tags["mlwright.retrain.verdict"] == "better"
    assert run.data.metrics["retrain.difference"] > 0

    # The policy "never" keeps the champion whatever the verdict.
    never = retrain(
        "models:/adult@champion",
        from_log=log_uri,
        promote="never",
        overrides=overrides,
        output=tmp_path / "challenger-never",
    )
    assert not never.promoted
    assert get_model("adult").aliases["champion"] == 3
    assert never.comparison["n_rows"] == promoted.comparison["n_rows"]
