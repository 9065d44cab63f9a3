"""The /dashboard page of a real server, opened in headless Chromium (Debian's chromium).

The server runs as ``mlwright serve`` on a free loopback port with its SQLite prediction log;
rows and feedback go through the real endpoints; Chromium loads the page (no network beyond
127.0.0.1: the page carries its own JavaScript), runs it, and a screenshot is saved under
docs/.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO_ROOT / "docs" / "monitor-dashboard.png"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    reason = "headless Chromium is not installed (apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"CI must open the dashboard, but {reason}")
    pytest.skip(reason)


def _chromium_run(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--hide-scrollbars",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_dashboard_renders_in_headless_chromium(bench_dataset, tmp_path):
    binary = _chromium()
    import mlwright
    from mlwright.data import read

    entry = bench_dataset("adult")
    train, test, target = read(entry["train"]), read(entry["test"]), entry["target"]
    model_dir = tmp_path / "adult"
    mlwright.train(
        train.sample(5000, random_state=0),
        target=target,
        models="lightgbm",
        max_trials=2,
        output=model_dir,
        seed=0,
    )
    port = _free_port()
    log = tmp_path / "predictions.db"
    env = {**os.environ, "MLWRIGHT_HOME": str(tmp_path / "home")}
    server_log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlwright",
            "serve",
            str(model_dir),
            "--port",
            str(port),
            "--grpc-port",
            "0",
            "--log",
            f"sqlite:///{log}",
        ],
        env=env,
        cwd=tmp_path,
        stdout=server_log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        stream = test.sample(3000, random_state=3).reset_index(drop=True)
        features = stream.drop(columns=[target])
        records = features.astype(object).where(features.notna(), None).to_dict("records")
        name = None
        with httpx.Client(base_url=url, timeout=60) as client:
            for start in range(0, len(records), 100):
                response = client.post("/predict", json={"records": records[start : start + 100]})
                assert response.status_code == 200, response.text
                body = response.json()
                name = body["model"]
                items = [
                    {"request_id": body["request_id"], "row": row, "actual": actual}
                    for row, actual in enumerate(stream[target].iloc[start : start + 100])
                ]
                assert client.post("/feedback", json={"items": items}).status_code == 200
            time.sleep(1.0)  # the log writer drains in the background
            page = client.get("/dashboard")
            data = client.get("/dashboard/data", params={"wait": 60})
        assert page.status_code == 200
        assert data.status_code == 200
        assert data.json()["models"][0]["series"]["total"] == 3000

        dom = _chromium_run(
            binary,
            tmp_path / "profile-dom",
            "--virtual-time-budget=15000",
            "--dump-dom",
            f"{url}/dashboard",
        )
        assert dom.returncode == 0, dom.stderr
        html = dom.stdout
        assert 'data-loaded="true"' in html
        assert f'data-model="{name}"' in html
        # Traffic, latency (2), prediction shares (2) and live metrics drawn: lines, or single
        # points when the whole stream was logged within one second.
        assert html.count("<polyline") + html.count("<circle") >= 6
        assert html.count("<polygon") >= 1  # the live metric's confidence band
        assert "Drift of the newest" in html
        assert '<span id="status">cannot load' not in html

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shot = _chromium_run(
            binary,
            tmp_path / "profile-shot",
            "--virtual-time-budget=15000",
            "--window-size=1400,1500",
            f"--screenshot={SCREENSHOT}",
            f"{url}/dashboard",
        )
        assert shot.returncode == 0, shot.stderr
        assert SCREENSHOT.stat().st_size > 20_000
    finally:
        process.terminate()
        process.wait(timeout=60)
        server_log.close()
