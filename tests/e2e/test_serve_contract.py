"""The server's OpenAPI document is its contract: schemathesis, against a real ``mlwright serve``,
sends thousands of generated requests (every phase: examples, coverage, fuzzing, stateful; every
check) and finds no request the document calls valid that the server refuses, no refused
request it calls invalid that the server takes, no undeclared status and no body that breaks its
declared schema. The one declared exception (tests/e2e/schemathesis.toml): the Open Inference
Protocol's cross-field rules, answered 400 as the protocol says (docs/serve.md)."""

# The fixtures come from tests/serve/serve_helpers.py and are parameters of the tests here.
# ruff: noqa: F811

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))

from serve_helpers import (  # noqa: E402
    credit_model_dir,  # noqa: F401  (fixtures)
    running,
    serve_env,  # noqa: F401
)

pytestmark = pytest.mark.slow

CONFIG = Path(__file__).with_name("schemathesis.toml")
TOKEN = "contract-token"


def _schemathesis(url: str, workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    executable = Path(sys.executable).with_name("schemathesis")
    if not executable.exists():
        pytest.fail("schemathesis is part of the test extra: pip install -e '.[test]'")
    return subprocess.run(
        [
            str(executable),
            "--config-file",
            str(CONFIG),
            "run",
            f"{url}/openapi.json",
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            "25",
            "--generation-deterministic",
            "--workers",
            "1",
            "--request-timeout",
            "30",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=workdir,
    )


def _assert_clean(result: subprocess.CompletedProcess, server) -> None:
    assert server.process.poll() is None, server.output()
    assert result.returncode == 0, result.stdout[-6000:]
    summary = result.stdout[result.stdout.rfind("SUMMARY") :]
    assert "Failures" not in summary, summary
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in summary, summary
    assert "19 selected" in result.stdout or "Tested:" in summary


def test_the_openapi_document_is_the_contract_with_a_token(credit_model_dir, serve_env, tmp_path):
    """credit-g (numbers and categories), a bearer token, the SQLite prediction log."""
    with running([f"credit={credit_model_dir}"], serve_env, tmp_path, "--token", TOKEN) as server:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(f"{server.url}/openapi.json").status_code == 401
        document = httpx.get(f"{server.url}/openapi.json", headers=auth).json()
        result = _schemathesis(server.url, tmp_path, "-H", f"Authorization: Bearer {TOKEN}")
        _assert_clean(result, server)
    # The declared errors carry the server's error body, not FastAPI's default one.
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    infer = document["paths"]["/v2/models/{name}/infer"]["post"]
    assert set(infer["responses"]) == {"200", "400", "401", "404", "413", "415", "503"}
    assert infer["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CreditInferenceRequest"
    }
    tensors = schemas["CreditInferenceRequest"]["properties"]["inputs"]["items"]["anyOf"]
    by_name = {
        alt["properties"]["name"]["const"]: alt
        for alt in tensors
        if "const" in alt["properties"]["name"]
    }
    assert by_name["purpose"]["properties"]["datatype"] == {"enum": ["BYTES"]}
    assert "class" in by_name  # the target: accepted and ignored
    feedback = document["paths"]["/feedback"]["post"]
    assert set(feedback["responses"]) == {"200", "400", "401", "409", "413", "422", "503"}


@pytest.fixture(scope="module")
def numeric_regression_model(tmp_path_factory) -> Path:
    """An all-numeric regression model (scikit-learn's bundled diabetes table)."""
    import mlwright

    folder = tmp_path_factory.mktemp("diabetes")
    frame = load_diabetes(as_frame=True).frame
    frame.to_csv(folder / "train.csv", index=False)
    output = folder / "model"
    mlwright.train(
        str(folder / "train.csv"),
        target="target",
        models=["lightgbm"],
        max_trials=1,
        seed=0,
        output=str(output),
    )
    return output


def test_the_contract_holds_for_an_all_numeric_regression_model(
    numeric_regression_model, credit_model_dir, serve_env, tmp_path
):
    """Two models (each model's operations under its own path, with its own body), the [N, F]
    matrix tensor, a regression answer, and no prediction log (POST /feedback: a declared 409)."""
    with running(
        [f"diabetes={numeric_regression_model}", f"credit={credit_model_dir}"],
        serve_env,
        tmp_path,
        "--log",
        "none",
    ) as server:
        document = httpx.get(f"{server.url}/openapi.json").json()
        # The matrix form the schema declares is really accepted.
        features = json.loads(
            httpx.get(f"{server.url}/v2/models/diabetes").json()["parameters"]["feature_order"]
        )
        rows = pd.DataFrame(load_diabetes(as_frame=True).data).head(3)[features]
        answer = httpx.post(
            f"{server.url}/v2/models/diabetes/infer",
            json={
                "inputs": [
                    {
                        "name": "features",
                        "datatype": "FP64",
                        "shape": [3, len(features)],
                        "data": rows.to_numpy().ravel().tolist(),
                    }
                ]
            },
        )
        assert answer.status_code == 200, answer.text
        result = _schemathesis(server.url, tmp_path)
        _assert_clean(result, server)
    request = document["components"]["schemas"]["DiabetesInferenceRequest"]
    titles = [alt["title"] for alt in request["properties"]["inputs"]["items"]["anyOf"]]
    assert "all features as one [N, F] matrix" in titles
    # A body is valid for one model only: each model's operations under its concrete path.
    paths = document["paths"]
    assert "/models/{name}/predict" not in paths
    for name, prefix in (("diabetes", "Diabetes"), ("credit", "Credit")):
        body = paths[f"/models/{name}/predict"]["post"]["requestBody"]
        assert body["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{prefix}PredictRequest"
        }
        assert f"/v2/models/{name}/infer" in paths
