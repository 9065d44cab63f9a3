"""A real server routes Open Inference Protocol traffic (REST via tritonclient.http, gRPC via
tritonclient.grpc) between two trained credit-g versions by the running experiment, and the
dashboard's experiments panel shows it in headless Chromium.

The same unit key must land on the same arm whichever protocol it comes through (one routing
function), every logged prediction records its arm, an explicit version bypasses the
experiment, and a bad unit key is a 400 / INVALID_ARGUMENT, never a server error.
"""

# The fixtures come from tests/serve/serve_helpers.py and are parameters of the tests here.
# ruff: noqa: F811

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))

from serve_helpers import (  # noqa: E402
    CREDIT_TEST,
    credit_model_dir,  # noqa: F401  (fixtures)
    credit_model_dir_b,  # noqa: F401
    running,
    serve_env,  # noqa: F401
)

pytestmark = pytest.mark.slow

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "experiment-dashboard.png"


def _inputs(module, frame: pd.DataFrame) -> list:
    inputs = []
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values):
            array, datatype = values.to_numpy(dtype=np.float64), "FP64"
        else:
            array = np.array([str(v).encode() for v in values], dtype=np.object_)
            datatype = "BYTES"
        tensor = module.InferInput(column, [len(frame)], datatype)
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    return inputs


def _json_body(frame: pd.DataFrame, parameters: dict | None = None) -> dict:
    inputs = []
    for column in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        inputs.append(
            {
                "name": column,
                "shape": [len(frame)],
                "datatype": "FP64" if numeric else "BYTES",
                "data": [float(v) if numeric else str(v) for v in frame[column]],
            }
        )
    return {"inputs": inputs, **({"parameters": parameters} if parameters is not None else {})}


def _http_answer(client, inputs, unit: str) -> tuple[str, str, str]:
    """(version, arm, request id) of one tritonclient.http infer with the unit parameter."""
    response = client.infer("credit", inputs, parameters={"user_id": unit}).get_response()
    return response["model_version"], response["parameters"].get("arm"), response["id"]


def _grpc_answer(client, inputs, unit: str | None = None, **options) -> tuple[str, str, str]:
    response = client.infer("credit", inputs, **options).get_response()
    parameters = response.parameters
    arm = parameters["arm"].string_param if "arm" in parameters else None
    return response.model_version, arm, response.id


def _wait_until(check, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout} s")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    reason = "headless Chromium is not installed (apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"CI must open the dashboard, but {reason}")
    pytest.skip(reason)


def _chromium_run(profile: Path, *args: str) -> str:
    done = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=15000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_oip_and_grpc_route_by_the_experiment_and_the_dashboard_shows_it(
    credit_model_dir, credit_model_dir_b, serve_env, tmp_path
) -> None:
    import grpc
    import tritonclient.grpc as triton_grpc
    import tritonclient.http as triton_http
    from tritonclient.utils import InferenceServerException

    from mlwright.experiment import start_experiment, stop_experiment
    from mlwright.serve import read_predictions

    log = f"sqlite:///{tmp_path / 'predictions.db'}"
    frame = pd.read_csv(CREDIT_TEST).drop(columns=["class"]).iloc[:1]
    references = {"champion": str(credit_model_dir), "challenger": str(credit_model_dir_b)}
    with running([str(credit_model_dir)], serve_env, tmp_path, "--log", log) as server:
        http = triton_http.InferenceServerClient(f"127.0.0.1:{server.port}")
        rpc = triton_grpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
        http_inputs, grpc_inputs = _inputs(triton_http, frame), _inputs(triton_grpc, frame)
        served = http.infer("credit", http_inputs).get_response()["model_version"]
        start_experiment(
            "oip", model="credit", unit_key="user_id", metric="conversion", log=log,
            references=references,
        )  # fmt: skip
        # The server reads running experiments every 2 s and loads the arms in the background.
        _wait_until(
            lambda: _http_answer(http, http_inputs, "probe")[1] is not None,
            "the experiment is not routed",
        )

        units = [f"user-{i}" for i in range(240)]
        by_http = {unit: _http_answer(http, http_inputs, unit) for unit in units}
        by_grpc = {
            unit: _grpc_answer(rpc, grpc_inputs, parameters={"user_id": unit}) for unit in units
        }
        by_metadata = {
            unit: _grpc_answer(rpc, grpc_inputs, headers={"x-unit-key": unit})
            for unit in units[:60]
        }
        # One routing function: a unit gets the same arm and version over every protocol.
        assert {u: a[:2] for u, a in by_grpc.items()} == {u: a[:2] for u, a in by_http.items()}
        assert {u: a[:2] for u, a in by_metadata.items()} == {u: by_http[u][:2] for u in units[:60]}
        versions = {arm: version for version, arm, _ in by_http.values()}
        assert set(versions) == {"champion", "challenger"}
        assert versions["champion"] == served
        assert versions["challenger"] != served
        share = np.mean([arm == "challenger" for _, arm, _ in by_http.values()])
        assert 0.38 < share < 0.62, share  # weights 0.5/0.5; 240 units: sd 0.032
        # Sticky on a second visit.
        for unit in units[::8]:
            assert _http_answer(http, http_inputs, unit)[:2] == by_http[unit][:2]

        # An explicit version bypasses the experiment (also the arm the server does not serve).
        challenger = versions["challenger"]
        pinned_units = [u for u in units if by_http[u][1] == "champion"][:5]
        pinned = [
            _grpc_answer(rpc, grpc_inputs, model_version=challenger, parameters={"user_id": unit})
            for unit in pinned_units
        ]
        assert {(version, arm) for version, arm, _ in pinned} == {(challenger, None)}
        with httpx.Client(base_url=server.url, timeout=30) as client:
            answer = client.post(
                f"/v2/models/credit/versions/{served}/infer",
                json=_json_body(frame, {"user_id": units[0]}),
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["model_version"] == served
            assert "arm" not in answer.json()["parameters"]

            # Bad unit keys: 400 with the reason, never a 5xx.
            for value in ({"id": 1}, "", "x" * 300, 2.5, [1]):
                bad = client.post(
                    "/v2/models/credit/infer", json=_json_body(frame, {"user_id": value})
                )
                assert bad.status_code == 400, bad.text
                assert "unit key" in bad.json()["error"]
            bad = client.post(
                "/v2/models/credit/infer",
                json=_json_body(frame),
                headers={"x-unit-key": "y" * 300},
            )
            assert bad.status_code == 400
            assert "X-Unit-Key" in bad.json()["error"]
        with pytest.raises(InferenceServerException) as caught:
            http.infer("credit", http_inputs, parameters={"user_id": True})
        assert caught.value.status() == "400"
        for options in (
            {"parameters": {"user_id": True}},
            {"parameters": {"user_id": ""}},
            {"headers": {"x-unit-key": "z" * 300}},
        ):
            with pytest.raises(InferenceServerException) as caught:
                rpc.infer("credit", grpc_inputs, **options)
            assert caught.value.status() == str(grpc.StatusCode.INVALID_ARGUMENT), options
            assert "unit key" in caught.value.message()

        # Outcomes with a planted truth: a challenger answer converts at 30%, a champion at 10%.
        rng = np.random.default_rng(0)
        answered = list(by_http.values()) + list(by_grpc.values())
        outcomes = [
            {
                "experiment": "oip",
                "request_id": request_id,
                "metric": "conversion",
                "value": int(rng.random() < (0.3 if arm == "challenger" else 0.1)),
            }
            for _, arm, request_id in answered
        ]
        time.sleep(0.5)  # the log writer commits in the background; outcomes join on it
        with httpx.Client(base_url=server.url, timeout=60) as client:
            recorded = client.post("/outcome", json=outcomes)
            assert recorded.status_code == 200, recorded.text
            assert recorded.json() == {"recorded": {"oip": len(outcomes)}}
            panel = client.get("/dashboard/experiments")
        assert panel.status_code == 200, panel.text
        (entry,) = panel.json()["experiments"]
        assert entry["name"] == "oip"
        assert entry["primary_metric"] == "conversion"
        arms = {arm["name"]: arm for arm in entry["arms"]}
        assert arms["champion"]["version"] == served
        assert arms["challenger"]["version"] == challenger
        assert arms["champion"]["weight"] == arms["challenger"]["weight"] == 0.5
        routed = len(by_http) + len(by_grpc) + len(by_metadata) + len(units[::8])
        assert arms["champion"]["requests"] + arms["challenger"]["requests"] >= routed
        for arm in arms.values():
            metric = arm["metric"]
            assert metric["lower"] <= metric["mean"] <= metric["upper"]
        sequential = arms["challenger"]["sequential"]
        assert 0 <= sequential["p_value"] <= 1
        assert sequential["lower"] <= sequential["difference"] <= sequential["upper"]
        assert entry["srm"]["mismatch"] is False
        assert all(check["ok"] for check in arms["challenger"]["guardrails"])

        html = _chromium_run(tmp_path / "profile", "--dump-dom", f"{server.url}/dashboard")
        assert 'data-experiments="1"' in html
        assert 'data-experiment="oip"' in html
        assert 'data-arm="champion"' in html
        assert 'data-arm="challenger"' in html
        assert "always-valid p" in html
        assert "matches weights" in html  # the SRM tile
        # Each arm's mean drawn as a dot on its interval.
        assert 'data-chart="arm-intervals"' in html
        assert len(re.findall(r"<circle [^>]*data-arm=", html)) == 2
        assert len(re.findall(r"<line [^>]*data-arm=", html)) == 2
        assert '<div class="empty">cannot load experiments' not in html
        _chromium_run(
            tmp_path / "profile-shot",
            "--window-size=1400,1700",
            f"--screenshot={SCREENSHOT}",
            f"{server.url}/dashboard",
        )
        assert SCREENSHOT.stat().st_size > 20_000

        # Every logged prediction of the routed requests records its arm and version.
        time.sleep(0.5)
        logged = read_predictions(log, model="credit")
        answers = {request_id: (version, arm) for version, arm, request_id in answered}
        rows = logged[logged["request_id"].isin(answers)]
        assert len(rows) == len(answers)
        for request_id, version, arm in rows[["request_id", "version", "arm"]].itertuples(
            index=False
        ):
            assert (version, arm) == answers[request_id]
        bypassed = logged[logged["request_id"].isin([request_id for *_, request_id in pinned])]
        assert set(bypassed["arm"]) == {"main"}

        # Shadow mode over both protocols: the caller sees the control, the other arm is logged.
        stop_experiment("oip", log=log)
        start_experiment(
            "shadowed", model="credit", arms="champion=1,challenger=0", shadow=True, log=log,
            references=references,
        )  # fmt: skip
        _wait_until(
            lambda: (
                httpx.post(f"{server.url}/v2/models/credit/infer", json=_json_body(frame))
                .json()["parameters"]
                .get("experiment")
                == "shadowed"
            ),
            "the shadow experiment is not routed",
        )
        shadowed = [_http_answer(http, http_inputs, f"s-{i}") for i in range(10)]
        shadowed += [
            _grpc_answer(rpc, grpc_inputs, parameters={"user_id": f"t-{i}"}) for i in range(10)
        ]
        assert {(version, arm) for version, arm, _ in shadowed} == {(served, "champion")}
        ids = [request_id for *_, request_id in shadowed]
        _wait_until(
            lambda: (lambda log_rows: (log_rows["arm"] == "shadow:challenger").sum() == len(ids))(
                read_predictions(log, model="credit").pipe(lambda f: f[f["request_id"].isin(ids)])
            ),
            "shadow scores are not all logged",
            timeout=10,
        )
        logged = read_predictions(log, model="credit")
        aside = logged[logged["request_id"].isin(ids)]
        assert sorted(set(aside["arm"])) == ["champion", "shadow:challenger"]
        assert set(aside.loc[aside["arm"] == "shadow:challenger", "version"]) == {challenger}
        assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200
        http.close()
        rpc.close()
