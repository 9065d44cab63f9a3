"""A real ``mlwright serve`` on loopback: Triton's clients, auth, SIGTERM, watch-and-swap."""

# The fixtures come from tests/serve/serve_helpers.py and are parameters of the tests here.
# ruff: noqa: F811

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))

from serve_helpers import (  # noqa: E402
    CREDIT_TEST,
    credit_copy,  # noqa: F401  (fixtures)
    credit_model_dir,  # noqa: F401
    credit_model_dir_b,  # noqa: F401
    credit_records,  # noqa: F401
    running,
    serve_env,  # noqa: F401
)

pytestmark = pytest.mark.slow


def _triton_inputs(module, frame: pd.DataFrame, **options) -> list:
    inputs = []
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values):
            array, datatype = values.to_numpy(dtype=np.float64), "FP64"
        else:
            array = np.array([str(v).encode() for v in values], dtype=np.object_)
            datatype = "BYTES"
        tensor = module.InferInput(column, [len(frame)], datatype)
        tensor.set_data_from_numpy(array, **options)
        inputs.append(tensor)
    return inputs


def test_triton_clients_get_the_predictions_of_mlwright_predict(
    credit_model_dir, serve_env, tmp_path
):
    import tritonclient.grpc as triton_grpc
    import tritonclient.http as triton_http

    expected_file = tmp_path / "expected.csv"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mlwright",
            "predict",
            str(credit_model_dir),
            str(CREDIT_TEST),
            "--output",
            str(expected_file),
        ],
        check=True,
        env=serve_env,
        cwd=tmp_path,
        capture_output=True,
        timeout=300,
    )
    expected = pd.read_csv(expected_file)
    frame = pd.read_csv(CREDIT_TEST).drop(columns=["class"])
    with running([str(credit_model_dir)], serve_env, tmp_path) as server:
        http_client = triton_http.InferenceServerClient(f"127.0.0.1:{server.port}")
        assert http_client.is_server_live()
        assert http_client.is_model_ready("credit")
        metadata = http_client.get_model_metadata("credit")
        assert {item["name"] for item in metadata["inputs"]} == set(frame.columns)
        grpc_client = triton_grpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
        assert grpc_client.is_server_ready()
        assert grpc_client.get_model_metadata("credit").name == "credit"
        results = {
            "http-json": http_client.infer(
                "credit", _triton_inputs(triton_http, frame, binary_data=False)
            ),
            "http-binary": http_client.infer(
                "credit", _triton_inputs(triton_http, frame, binary_data=True)
            ),
            "grpc": grpc_client.infer("credit", _triton_inputs(triton_grpc, frame)),
        }
        for name, result in results.items():
            labels = [
                v.decode() if isinstance(v, bytes) else v
                for v in result.as_numpy("predict").tolist()
            ]
            assert labels == expected["prediction"].tolist(), name
            probabilities = result.as_numpy("predict_proba")
            np.testing.assert_allclose(
                probabilities,
                expected[["proba_bad", "proba_good"]].to_numpy(),
                rtol=1e-9,
                err_msg=name,
            )
        # Bad input over gRPC: INVALID_ARGUMENT with the field named.
        with pytest.raises(triton_grpc.InferenceServerException) as caught:
            grpc_client.infer("credit", _triton_inputs(triton_grpc, frame.drop(columns="age")))
        assert "INVALID_ARGUMENT" in str(caught.value.status())
        assert "'age'" in caught.value.message()
        http_client.close()
        grpc_client.close()


def test_token_protects_everything_but_health(
    credit_model_dir, serve_env, tmp_path, credit_records
):
    import grpc

    from mlwright.serve._proto import grpc_predict_v2_pb2 as pb
    from mlwright.serve._proto import grpc_predict_v2_pb2_grpc as pb_grpc

    env = dict(serve_env, MLWRIGHT_TOKEN="t0ken")
    with running([str(credit_model_dir)], env, tmp_path) as server:
        body = {"records": credit_records[:2]}
        assert httpx.post(f"{server.url}/predict", json=body).status_code == 401
        ok = httpx.post(
            f"{server.url}/predict", json=body, headers={"Authorization": "Bearer t0ken"}
        )
        assert ok.status_code == 200
        assert httpx.get(f"{server.url}/metrics").status_code == 401
        assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            assert stub.ServerLive(pb.ServerLiveRequest()).live
            with pytest.raises(grpc.RpcError) as caught:
                stub.ModelMetadata(pb.ModelMetadataRequest(name="credit"))
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            answer = stub.ModelMetadata(
                pb.ModelMetadataRequest(name="credit"), metadata=[("authorization", "Bearer t0ken")]
            )
            assert answer.name == "credit"


def test_sigterm_finishes_requests_and_flushes_the_log(
    credit_model_dir, serve_env, tmp_path, credit_records
):
    from mlwright.serve import read_predictions

    log = tmp_path / "predictions.db"
    server_env = dict(serve_env)
    with running(
        [str(credit_model_dir)], server_env, tmp_path, "--log", f"sqlite:///{log}"
    ) as server:
        with httpx.Client(base_url=server.url) as client:
            for record in credit_records[:150]:
                assert client.post("/predict", json={"records": [record]}).status_code == 200
        code = server.stop()
    # uvicorn re-raises SIGTERM after its graceful shutdown: the conventional exit status.
    assert code in (0, -signal.SIGTERM), server.output()
    frame = read_predictions(f"sqlite:///{log}")
    assert len(frame) == 150
    assert frame["request_id"].is_unique


def _load(url: str, stop: threading.Event, records: list[dict], results: list) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        index = 0
        while not stop.is_set():
            record = records[index % len(records)]
            index += 1
            try:
                response = client.post("/predict", json={"records": [record]})
                results.append((response.status_code, response.json().get("version")))
            except httpx.HTTPError as err:
                results.append((repr(err), None))


def test_watch_swaps_a_replaced_artifact_under_load(
    credit_copy, credit_model_dir_b, serve_env, tmp_path, credit_records
):
    with running(
        [str(credit_copy)], serve_env, tmp_path, "--watch", "--watch-interval", "0.2"
    ) as server:
        first = httpx.get(f"{server.url}/v2/models/credit").json()["versions"][0]
        stop = threading.Event()
        results: list = []
        threads = [
            threading.Thread(target=_load, args=(server.url, stop, credit_records, results))
            for _ in range(3)
        ]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        # Replace the artifact the server follows (as a new training run writing it would).
        staged = credit_copy.parent / ".staged"
        shutil.copytree(credit_model_dir_b, staged)
        retired = credit_copy.parent / ".retired"
        os.replace(credit_copy, retired)
        os.replace(staged, credit_copy)
        deadline = time.monotonic() + 30
        second = first
        while time.monotonic() < deadline and second == first:
            time.sleep(0.2)
            second = httpx.get(f"{server.url}/v2/models/credit").json()["versions"][0]
        time.sleep(1.0)
        stop.set()
        for thread in threads:
            thread.join(30)
    assert second != first
    failures = [result for result in results if result[0] != 200]
    assert not failures, failures[:5]
    versions = [version for _, version in results]
    assert first in versions
    assert second in versions
    assert len(results) > 50


def test_watch_follows_a_registry_alias_under_load(serve_env, tmp_path, credit_records):
    from serve_helpers import CREDIT_TRAIN

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "mlwright", *args],
            env=serve_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )

    for seed in ("0", "1"):
        cli(
            "train",
            str(CREDIT_TRAIN),
            "--target",
            "class",
            "--models",
            "lightgbm",
            "--max-trials",
            "1",
            "--seed",
            seed,
            "--register",
            "credit",
            "--quiet",
            "--output",
            str(tmp_path / f"model-{seed}"),
        )
    cli("models", "promote", "credit", "1", "--alias", "champion")
    with running(
        ["models:/credit@champion"], serve_env, tmp_path, "--watch", "--watch-interval", "0.3"
    ) as server:
        assert httpx.get(f"{server.url}/v2/models/credit").json()["versions"] == ["1"]
        stop = threading.Event()
        results: list = []
        threads = [
            threading.Thread(target=_load, args=(server.url, stop, credit_records, results))
            for _ in range(3)
        ]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        cli("models", "promote", "credit", "2", "--alias", "champion")
        deadline = time.monotonic() + 60
        versions = ["1"]
        while time.monotonic() < deadline and versions == ["1"]:
            time.sleep(0.3)
            versions = httpx.get(f"{server.url}/v2/models/credit").json()["versions"]
        time.sleep(1.0)
        stop.set()
        for thread in threads:
            thread.join(30)
    assert versions == ["2"]
    failures = [result for result in results if result[0] != 200]
    assert not failures, failures[:5]
    assert {version for _, version in results} == {"1", "2"}


@pytest.mark.skipif(
    not (Path("/dev/full").exists() and Path("/dev/full").is_char_device()),
    reason="needs Linux's /dev/full (every write fails with ENOSPC) for a real full disk",
)
def test_a_log_on_a_full_disk_refuses_to_answer_unless_buffered(
    credit_model_dir, serve_env, tmp_path, credit_records
):
    # /dev/full is a real full disk: the log store opens it, and every write fails (ENOSPC).
    log = ["--log", "jsonl:////dev/full"]
    body = {"records": credit_records[:1]}
    with running([str(credit_model_dir)], serve_env, tmp_path, *log) as server:
        answer = httpx.post(f"{server.url}/predict", json=body, timeout=30)
        assert server.process.poll() is None
    # Durable (the default): a prediction that is not in the log is not answered.
    assert answer.status_code == 503, answer.text
    assert "No space left on device" in answer.json()["error"]
    assert "--log-buffered" in answer.json()["error"]
    with running([str(credit_model_dir)], serve_env, tmp_path, *log, "--log-buffered") as server:
        answer = httpx.post(f"{server.url}/predict", json=body, timeout=30)
        deadline = time.monotonic() + 10
        dropped = 0.0
        while time.monotonic() < deadline and not dropped:
            metrics = httpx.get(f"{server.url}/metrics").text
            dropped = sum(
                float(line.split()[-1])
                for line in metrics.splitlines()
                if line.startswith("mlwright_log_dropped_records_total")
            )
            time.sleep(0.2)
    # Buffered: answered at once, and the lost record is counted, never silent.
    assert answer.status_code == 200, answer.text
    assert dropped >= 1
