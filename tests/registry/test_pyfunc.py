"""A registered mlwright model is an MLflow pyfunc model."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

import mlwright
from mlwright.errors import ModelError
from mlwright.registry import add_pyfunc_flavor, open_store, promote
from mlwright.registry._pyfunc import prediction_frame

from .conftest import CREDIT_TEST, quick_artifact
from .helpers import registered


def test_flavor_is_added_in_place_and_listed_in_the_manifest(tmp_path):
    path = quick_artifact(tmp_path / "model")
    add_pyfunc_flavor(path)
    manifest = (path / "MANIFEST").read_text()
    for name in ("MLmodel", "mlflow_model.py", "requirements.txt", "python_env.yaml"):
        assert f"  {name}\n" in manifest
    description = (path / "MLmodel").read_text()
    assert "loader_module: mlflow.pyfunc.loaders.code_model" in description
    assert "model_code_path: mlflow_model.py" in description
    mlwright.load(path)  # still verifies
    add_pyfunc_flavor(path)  # idempotent


@pytest.fixture
def champion(store_home, artifact, monkeypatch):
    store = open_store()
    version = registered(artifact, "credit", store=store)
    promote("credit", version.version, store=store)
    # MLflow's own functions read the store from the environment.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    return store


def test_pyfunc_load_model_predicts_like_mlwright(champion, artifact):
    import mlflow.pyfunc

    rows = pd.read_csv(CREDIT_TEST).head(25)
    expected = prediction_frame(mlwright.load(artifact), rows)
    loaded = mlflow.pyfunc.load_model("models:/credit@champion")
    predicted = loaded.predict(rows)
    assert list(predicted.columns) == ["prediction", "proba_bad", "proba_good"]
    pd.testing.assert_frame_equal(predicted.reset_index(drop=True), expected)
    # MLflow wrote its registered_model_meta file into the stored model: mlwright still loads.
    assert mlwright.load("models:/credit@champion").task == "binary"


def test_pyfunc_refuses_a_tampered_model(champion):
    import mlflow.pyfunc

    version = champion.client.get_model_version_by_alias("credit", "champion")
    stored = Path(version.source.removeprefix("file://"))
    (stored / "schema.json").write_text("{}")
    with pytest.raises(ModelError, match="modified after it was saved"):
        mlflow.pyfunc.load_model("models:/credit@champion")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_mlflow_models_serve_answers_invocations(champion, artifact, tmp_path):
    port = _free_port()
    # MLflow starts `uvicorn` by name: the environment's bin folder must be on PATH, as it is
    # in an activated virtual environment.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    environment = dict(os.environ, MLFLOW_TRACKING_URI=champion.uri, PATH=path)
    command = [
        sys.executable, "-m", "mlflow", "models", "serve",
        "-m", "models:/credit@champion", "--env-manager", "local",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-6000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail("mlflow models serve did not start within 180 s")
                time.sleep(0.5)
        rows = pd.read_csv(CREDIT_TEST).head(5).drop(columns=["class"])
        body = json.dumps({"dataframe_split": json.loads(rows.to_json(orient="split"))})
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        predictions = pd.DataFrame(answer["predictions"])
        expected = prediction_frame(mlwright.load(artifact), rows)
        assert list(predictions["prediction"]) == list(expected["prediction"])
        assert predictions["proba_good"].to_numpy() == pytest.approx(
            expected["proba_good"].to_numpy()
        )
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
