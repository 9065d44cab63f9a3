"""The monitoring loop on real data: serve adult, log, drift, feedback, alert, retrain.

The server is the real FastAPI app with its real SQLite prediction log (in process, through
Starlette's test client); the alert webhook is a real HTTP receiver on 127.0.0.1; retraining
registers in a real MLflow store. Training stays tiny (LightGBM, 2 trials).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SHIFTED = {"age", "race", "occupation"}


@pytest.fixture(scope="module")
def champion(adult, tmp_path_factory):
    """A tiny LightGBM model of adult (5,000 training rows), saved with its reference."""
    import mlwright

    train, _, target = adult
    directory = tmp_path_factory.mktemp("champion") / "adult"
    model = mlwright.train(
        train.sample(5000, random_state=0),
        target=target,
        models="lightgbm",
        max_trials=2,
        output=directory,
        seed=0,
    )
    return model


@pytest.fixture(scope="module")
def adult(bench_dataset):
    from mlwright.data import read

    entry = bench_dataset("adult")
    return read(entry["train"]), read(entry["test"]), entry["target"]


def _records(frame: pd.DataFrame) -> list[dict]:
    cleaned = frame.astype(object).where(frame.notna(), None)
    return cleaned.to_dict(orient="records")


def _post_rows(client, frame: pd.DataFrame, batch: int = 250) -> list[tuple[str, int]]:
    """Send rows to /predict in batches; returns (request_id, row) per input row."""
    keys = []
    for start in range(0, len(frame), batch):
        part = frame.iloc[start : start + batch]
        response = client.post("/predict", json={"records": _records(part)})
        assert response.status_code == 200, response.text
        request_id = response.json()["request_id"]
        keys.extend((request_id, index) for index in range(len(part)))
    return keys


class _Client:
    """A synchronous client of the ASGI app on one event loop (no network needed)."""

    def __init__(self, app) -> None:
        import asyncio

        import httpx

        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test", timeout=60
        )

    def post(self, path: str, **kwargs):
        return self._loop.run_until_complete(self._client.post(path, **kwargs))

    def get(self, path: str, **kwargs):
        return self._loop.run_until_complete(self._client.get(path, **kwargs))

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


class _Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 (the http.server API)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        return


@pytest.fixture
def webhook():
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts", _Receiver.received
    server.shutdown()
    server.server_close()


def _shifted(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "monitor"))
    from monitor_helpers import shifted

    return shifted(frame, seed)


def _concept_shifted_labels(frame: pd.DataFrame, target: str) -> pd.Series:
    """A changed world: for men the outcome is now the opposite of what it was."""
    labels = frame[target].copy()
    flip = (frame["sex"] == "Male").to_numpy()
    labels.loc[flip] = np.where(labels.loc[flip] == ">50K", "<=50K", ">50K")
    return labels


@pytest.mark.slow
def test_serve_log_drift_feedback_alert_and_dashboard(champion, adult, tmp_path, webhook):
    from mlwright.monitor import AlertConfig, monitor_model
    from mlwright.serve import ModelRegistry, ServedModel, ServeSettings, create_app

    assert (Path(champion.path) / "reference.json").is_file()
    assert "reference.json" in (Path(champion.path) / "MANIFEST").read_text()
    _, test, target = adult
    log_uri = f"sqlite:///{tmp_path / 'predictions.db'}"
    settings = ServeSettings(log_uri=log_uri, home=tmp_path, grpc_port=0)
    app = create_app(ModelRegistry([ServedModel(champion, name="adult", version="1")]), settings)
    stream = test.sample(4000, random_state=7).reset_index(drop=True)  # random order
    features = stream.drop(columns=[target])
    client = _Client(app)
    try:
        keys = _post_rows(client, features)
        app.state.server.log.flush()
        plain = monitor_model(champion, log_uri, name="adult", send=False)
        assert plain.n_rows == 4000
        assert plain.drift.drifted_features == []
        assert not plain.drift.prediction.drifted

        shift_start = time.time()
        _post_rows(client, _shifted(features, seed=2))
        app.state.server.log.flush()
        moved = monitor_model(champion, log_uri, name="adult", since=shift_start, send=False)
        assert set(moved.drift.drifted_features) == SHIFTED

        # Outcomes from a concept-shifted world arrive through POST /feedback.
        labels = _concept_shifted_labels(stream, target)
        items = [
            {"request_id": request_id, "row": row, "actual": label}
            for (request_id, row), label in zip(keys, labels, strict=True)
        ]
        for start in range(0, len(items), 1000):
            response = client.post("/feedback", json={"items": items[start : start + 1000]})
            assert response.status_code == 200, response.text
        assert client.post("/feedback", json={"request_id": "x"}).status_code == 422
        assert client.post("/feedback", content=b"{").status_code == 400

        config = AlertConfig.from_dict(
            {
                "rules": [{"type": "metric_drop"}, {"type": "drift_share", "threshold": 0.2}],
                "channels": {"webhook": webhook[0], "jsonl": str(tmp_path / "alerts.jsonl")},
            }
        )
        result = monitor_model(champion, log_uri, name="adult", window="1000rows", config=config)
        performance = result.performance
        assert performance.n_labelled == 4000
        assert all(window.below_validation for window in performance.windows)
        fired = {alert["type"] for alert in result.alerts}
        assert "metric_drop" in fired
        assert "drift_share" in fired  # the shifted rows are in the whole log too
        received = [alert["type"] for body in webhook[1] for alert in body["alerts"]]
        assert "metric_drop" in received
        lines = (tmp_path / "alerts.jsonl").read_text().splitlines()
        assert {json.loads(line)["type"] for line in lines} == fired

        page = client.get("/dashboard")
        assert page.status_code == 200
        assert "<script>" in page.text
        assert "http://" not in page.text.replace("http://www.w3.org", "")  # no CDN
        data = client.get("/dashboard/data", params={"wait": 60}).json()
        entry = data["models"][0]
        assert entry["series"]["total"] == 8000
        assert entry["series"]["labelled"] > 0
        assert entry["drift"]["n_rows"] == 5000
        assert entry["performance"]["windows"]

        # The same from the command line: batch labels, then the monitor of the model.
        labels_csv = tmp_path / "labels.csv"
        pd.DataFrame({"request_id": [keys[0][0]], "row": [keys[0][1]], "actual": ["<=50K"]}).to_csv(
            labels_csv, index=False
        )
        stored = subprocess.run(
            [sys.executable, "-m", "mlwright", "feedback", log_uri, str(labels_csv), "--json"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert stored.returncode == 0, stored.stderr
        assert json.loads(stored.stdout)["stored"] == 1
        report = tmp_path / "drift.html"
        command = subprocess.run(
            [
                sys.executable,
                "-m",
                "mlwright",
                "monitor",
                str(champion.path),
                "--log",
                log_uri,
                "--name",
                "adult",
                "--window",
                "1000rows",
                "--json",
                "--output",
                str(report),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert command.returncode == 0, command.stderr
        document = json.loads(command.stdout)
        assert document["n_rows"] == 8000
        assert document["performance"]["n_below"] >= 1
        assert "metric_drop" in {alert["type"] for alert in document["alerts"]}
        assert "Live performance" in report.read_text()

        # Drift past the (lowered) dataset threshold chains a retraining from the log.
        rules = tmp_path / "alerts.yaml"
        rules.write_text(
            "rules:\n  - type: drift_share\n    threshold: 0.2\ndrift:\n  drift_share: 0.2\n"
        )
        chained = subprocess.run(
            [
                sys.executable,
                "-m",
                "mlwright",
                "monitor",
                str(champion.path),
                "--log",
                log_uri,
                "--name",
                "adult",
                "--alerts",
                str(rules),
                "--retrain-on-drift",
                "--promote",
                "never",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert chained.returncode == 0, chained.stderr
        retrained = json.loads(chained.stdout)["retrain"]
        assert retrained["decision"] == "kept champion"
        assert retrained["comparison"]["verdict"] == "better"  # the world changed
        assert retrained["n_holdout"] == pytest.approx(0.3 * 4001, abs=2)
    finally:
        client.close()
        app.state.server.close()


def test_monitor_two_files_from_the_command_line(adult, tmp_path):
    train, test, target = adult
    current = tmp_path / "current.csv"
    _shifted(test.sample(3000, random_state=1)).to_csv(current, index=False)
    reference = tmp_path / "reference.csv"
    train.sample(8000, random_state=2).to_csv(reference, index=False)
    report = tmp_path / "drift.html"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlwright",
            "monitor",
            "--reference",
            str(reference),
            "--current",
            str(current),
            "--target",
            target,
            "--json",
            "--output",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    document = json.loads(completed.stdout)
    assert set(document["drifted_features"]) == SHIFTED
    html = report.read_text()
    assert html.count("data:image/png;base64,") >= 14
    assert "age" in html


def test_monitor_bad_inputs_exit_2(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,actual\nabc,1\n")
    cases = [
        (["monitor", "--reference", str(tmp_path / "nope.csv")], "--current"),
        (["monitor"], "Name the model"),
        (["feedback", str(tmp_path / "none.db"), str(labels)], "No prediction log"),
        (
            ["retrain", str(tmp_path / "no-model"), "--promote", "sometimes", "--from-log"],
            "promotion policy",
        ),
    ]
    for arguments, expected in cases:
        completed = subprocess.run(
            [sys.executable, "-m", "mlwright", *arguments],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert completed.returncode == 2, (arguments, completed.stderr)
        assert expected in completed.stderr + completed.stdout
        assert "Traceback" not in completed.stderr
