"""The registry from the command line, against real stores: SQLite and a real `mlflow server`.

Training here is deliberately tiny (credit-g, LightGBM, two trials) so that these tests measure
the tracking and registry behaviour, not the search.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
CREDIT = REPO / "examples" / "credit-g"
TINY = ["--target", "class", "--max-trials", "2", "--models", "lightgbm", "--quiet"]


def _environment(home: Path, **extra: str) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("MLFLOW_TRACKING_URI", "MLWRIGHT_TRACKING_URI")
    }
    environment["MLWRIGHT_HOME"] = str(home)
    environment.update(extra)
    return environment


def mlwright(*args: str, home: Path, cwd: Path, timeout: float = 600, **extra: str):
    return subprocess.run(
        [sys.executable, "-m", "mlwright", *args],
        cwd=cwd,
        env=_environment(home, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def concurrent(tmp_path_factory):
    """Two `mlwright train --register credit` started at the same moment on a fresh store.

    Each trains from its own copy of the data, so that the reproduce tests below can change or
    remove one.
    """
    root = tmp_path_factory.mktemp("concurrent")
    home = root / ".mlwright"
    processes = []
    for name in ("first", "second"):
        data = root / f"{name}.csv"
        data.write_bytes((CREDIT / "train.csv").read_bytes())
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "mlwright", "train", str(data), *TINY,
                 "--seed", "0", "--register", "credit", "--output", str(root / name)],
                cwd=root,
                env=_environment(home),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )  # fmt: skip
    results = [(process.wait(timeout=900), *process.communicate()) for process in processes]
    return {"root": root, "home": home, "results": results}


def _run_id(stdout: str) -> str:
    for line in stdout.splitlines():
        if line.startswith("MLflow run "):
            return line.split()[2]
    raise AssertionError(f"no run id in: {stdout}")


@pytest.mark.slow
def test_two_concurrent_registrations_both_succeed(concurrent):
    for code, stdout, stderr in concurrent["results"]:
        assert code == 0, stderr
        assert "Registered models:/credit/" in stdout
    registered = {
        line.split("models:/credit/")[1].split()[0]
        for _, stdout, _ in concurrent["results"]
        for line in stdout.splitlines()
        if line.startswith("Registered")
    }
    assert registered == {"1", "2"}
    listing = mlwright(
        "models", "show", "credit", "--json", home=concurrent["home"], cwd=concurrent["root"]
    )
    assert listing.returncode == 0, listing.stderr
    versions = json.loads(listing.stdout)["versions"]
    assert sorted(version["version"] for version in versions) == [1, 2]
    assert {version["run_id"] for version in versions} == {
        _run_id(stdout) for _, stdout, _ in concurrent["results"]
    }
    with sqlite3.connect(concurrent["home"] / "mlflow.db") as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.slow
def test_reproduce_matches_and_refuses_other_data(concurrent):
    root, home = concurrent["root"], concurrent["home"]
    run_id = _run_id(concurrent["results"][0][1])
    result = mlwright("reproduce", run_id, "--json", home=home, cwd=root)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["data_origin"] == "recorded path"
    assert report["deterministic"] is True
    assert report["difference"] == pytest.approx(0.0, abs=1e-9)
    assert report["score"] == pytest.approx(report["original_score"])

    changed = root / "changed.csv"
    frame = pd.read_csv(CREDIT / "train.csv")
    frame.loc[0, "age"] = 99
    frame.to_csv(changed, index=False)
    refused = mlwright("reproduce", run_id, "--data", str(changed), home=home, cwd=root)
    assert refused.returncode == 2, refused.stderr
    assert "Refusing to reproduce" in refused.stderr
    assert "Traceback" not in refused.stderr

    # The second run's data file is gone: the copy stored in the run is used.
    other = _run_id(concurrent["results"][1][1])
    (root / "second.csv").unlink()
    result = mlwright("reproduce", other, "--json", home=home, cwd=root)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["data_origin"] == "stored copy"

    missing = mlwright("reproduce", "0" * 32, home=home, cwd=root)
    assert missing.returncode == 2
    assert "No run '" + "0" * 32 in missing.stderr


def _bash_blocks(page: Path) -> list[str]:
    blocks, inside, current = [], False, []
    for line in page.read_text().splitlines():
        if line.strip() == "```bash":
            inside, current = True, []
        elif inside and line.strip() == "```":
            inside = False
            blocks.append("\n".join(current))
        elif inside:
            current.append(line)
    return blocks


@pytest.mark.slow
def test_the_docs_example_runs(tmp_path):
    (tmp_path / "examples").symlink_to(REPO / "examples")
    blocks = _bash_blocks(REPO / "docs" / "registry.md")
    assert blocks
    script = f'set -euo pipefail\nmlwright() {{ "{sys.executable}" -m mlwright "$@"; }}\n'
    script += "\n".join(blocks)
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=_environment(tmp_path / ".mlwright"),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    output = result.stdout
    assert "Registered models:/credit-risk/1" in output
    assert "Registered models:/credit-risk/2" in output
    assert "models:/credit-risk@champion -> version 2" in output
    assert "models:/credit-risk@champion -> version 1 (was version 2)" in output
    predictions = pd.read_csv(tmp_path / "champion.csv")
    assert list(predictions.columns) == ["prediction", "proba_bad", "proba_good"]
    assert len(predictions) == 250


@pytest.mark.slow
def test_sigkill_mid_training_leaves_no_version_and_a_sound_store(tmp_path):
    home = tmp_path / ".mlwright"
    process = subprocess.Popen(
        [sys.executable, "-m", "mlwright", "train", str(CREDIT / "train.csv"),
         "--target", "class", "--time-limit", "120", "--register", "credit", "--quiet"],
        cwd=tmp_path,
        env=_environment(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, "training ended before it could be killed"
            if _running_runs(home / "mlflow.db"):
                break
            assert time.monotonic() < deadline, "the training run never appeared"
            time.sleep(0.2)
        time.sleep(2)  # well inside the search
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    with sqlite3.connect(home / "mlflow.db") as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert connection.execute("select count(*) from model_versions").fetchone()[0] == 0
    listing = mlwright("models", "list", home=home, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "No registered models" in listing.stdout
    [dead] = _running_runs(home / "mlflow.db")

    # The next training in this store marks the dead run KILLED.
    env = {"MLWRIGHT_HOME": str(home)}
    code = (
        "from mlwright.registry import start_training_run;"
        "run = start_training_run(data='x.csv', settings={});"
        "run.end('FINISHED')"
    )
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_environment(home, **env),
                   check=True, timeout=300)  # fmt: skip
    with sqlite3.connect(home / "mlflow.db") as connection:
        status = connection.execute(
            "select status from runs where run_uuid = ?", (dead,)
        ).fetchone()[0]
    assert status == "KILLED"


def _running_runs(database: Path) -> list[str]:
    if not database.is_file():
        return []
    try:
        with sqlite3.connect(database, timeout=5) as connection:
            rows = connection.execute("select run_uuid from runs where status = 'RUNNING'")
            return [row[0] for row in rows]
    except sqlite3.Error:  # tables not created yet
        return []


@pytest.mark.slow
def test_unreachable_tracking_server_is_exit_2_naming_the_uri(tmp_path):
    uri = f"http://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    result = mlwright(
        "train", str(CREDIT / "train.csv"), *TINY, "--tracking-uri", uri,
        home=tmp_path / ".mlwright", cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert uri in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 60
    assert not (tmp_path / "models").exists()  # it stopped before training
    listing = mlwright(
        "models", "list", home=tmp_path / ".mlwright", cwd=tmp_path, MLFLOW_TRACKING_URI=uri
    )
    assert listing.returncode == 2
    assert uri in listing.stderr


@pytest.mark.slow
def test_registry_mistakes_are_exit_2(tmp_path):
    home = tmp_path / ".mlwright"
    result = mlwright("models", "show", "nobody", home=home, cwd=tmp_path)
    assert result.returncode == 2
    assert "No registered model named 'nobody'" in result.stderr
    result = mlwright("predict", "models:/nobody@champion", str(CREDIT / "test.csv"),
                      "--output", "out.csv", home=home, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2
    assert "No registered model named 'nobody'" in result.stderr
    result = mlwright("train", str(CREDIT / "train.csv"), *TINY, "--register", "a/b",
                      home=home, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2
    assert "cannot be a registered model name" in result.stderr


@pytest.mark.slow
def test_against_a_real_mlflow_server(tmp_path):
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}", "--workers", "1"],
        cwd=tmp_path,
        env=dict(_environment(tmp_path / ".unused"), PATH=path),
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-4000:]
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert time.monotonic() < deadline, "mlflow server did not start in 180 s"
                time.sleep(0.5)
        home = tmp_path / "client-home"
        trained = mlwright(
            "train", str(CREDIT / "train.csv"), *TINY, "--register", "credit",
            "--tracking-uri", uri, home=home, cwd=tmp_path,
        )  # fmt: skip
        assert trained.returncode == 0, trained.stderr
        assert f"{uri}/#/experiments/" in trained.stdout
        assert not (home / "mlflow.db").exists()  # nothing went to the local store
        shown = mlwright("models", "show", "credit/1", "--json", home=home, cwd=tmp_path,
                         MLFLOW_TRACKING_URI=uri)  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["source"].startswith("mlflow-artifacts:")
        predicted = mlwright(
            "predict", "models:/credit/1", str(CREDIT / "test.csv"), "--output", "out.csv",
            home=home, cwd=tmp_path, MLFLOW_TRACKING_URI=uri,
        )  # fmt: skip
        assert predicted.returncode == 0, predicted.stderr
        assert len(pd.read_csv(tmp_path / "out.csv")) == 250
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.mark.slow
def test_the_run_stage_trains_registers_and_crowns_the_first_version(
    tmp_path, monkeypatch, request
):
    from types import SimpleNamespace

    from rich.console import Console

    from mlwright.cli._registry_commands import registered_name, run_stage_train_and_register
    from mlwright.config import get_settings
    from mlwright.registry import get_model

    monkeypatch.setenv("MLWRIGHT_HOME", str(tmp_path / ".mlwright"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    request.addfinalizer(get_settings.cache_clear)  # later tests read their own settings
    console = Console(record=True, width=200)
    state = SimpleNamespace(
        data=str(CREDIT / "train.csv"), target="class", output=tmp_path / "out",
        console=console, artifacts={}, max_trials=2, models="lightgbm",
    )  # fmt: skip
    assert registered_name(state.data) == "credit-g"
    run_stage_train_and_register(state)
    run_stage_train_and_register(state)
    text = console.export_text()
    assert "Registered models:/credit-g/1" in text
    assert "Registered models:/credit-g/2" in text
    assert "Browse it:" in text
    assert get_model("credit-g").aliases == {"champion": 1}
    assert (state.artifacts["model"] / "MLmodel").is_file()
