"""Where the store is and how failures to reach it are reported."""

from __future__ import annotations

import socket
import sqlite3
import time

import pytest

from mlwright.errors import RegistryError
from mlwright.registry import default_tracking_uri, open_store, resolve_tracking_uri


def test_default_store_is_sqlite_in_mlwright_home(store_home):
    assert default_tracking_uri() == f"sqlite:///{store_home / 'mlflow.db'}"
    assert resolve_tracking_uri() == default_tracking_uri()


def test_explicit_uri_wins_over_environment(store_home, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5001")
    assert resolve_tracking_uri() == "http://127.0.0.1:5001"
    monkeypatch.setenv("MLWRIGHT_TRACKING_URI", "http://127.0.0.1:5002")
    assert resolve_tracking_uri() == "http://127.0.0.1:5002"
    assert resolve_tracking_uri("sqlite:////tmp/other.db") == "sqlite:////tmp/other.db"


def test_fresh_home_gets_a_migrated_database_in_wal_mode(tmp_path, monkeypatch):
    home = tmp_path / "fresh"
    monkeypatch.setenv("MLWRIGHT_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    store = open_store()
    assert store.embedded
    assert (home / "mlflow.db").is_file()
    with sqlite3.connect(home / "mlflow.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    experiment_id = store.experiment_id()
    assert store.experiment_id() == experiment_id  # created once, then found
    location = store.client.get_experiment(experiment_id).artifact_location
    assert location == (home / "artifacts" / "mlwright").as_uri()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_server_fails_fast_naming_the_uri(store_home):
    uri = f"http://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    with pytest.raises(RegistryError) as caught:
        open_store(uri)
    assert time.monotonic() - started < 15
    assert uri in str(caught.value)
    assert "mlflow server" in str(caught.value)


def test_damaged_database_is_a_registry_error(tmp_path, monkeypatch):
    database = tmp_path / "broken.db"
    database.write_bytes(b"this is not an SQLite database" * 100)
    uri = f"sqlite:///{database}"
    with pytest.raises(RegistryError) as caught:
        open_store(uri)
    assert uri in str(caught.value)


_REGISTER_ONE = """
from mlwright.registry import open_store, register_version, start_training_run
store = open_store()
run = start_training_run(data="data.csv", settings={}, store=store)
run.end("FINISHED")
print(register_version("shared", run_id=run.run_id, store=store).version)
"""


@pytest.mark.slow
def test_processes_creating_and_registering_at_once_all_succeed(tmp_path):
    import os
    import subprocess
    import sys

    home = tmp_path / "fresh"  # no database yet: all three race to create it
    environment = {key: value for key, value in os.environ.items() if "TRACKING_URI" not in key}
    environment["MLWRIGHT_HOME"] = str(home)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _REGISTER_ONE],
            cwd=tmp_path,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
    assert sorted(int(stdout.strip()) for stdout, _ in outputs) == [1, 2, 3]
    with sqlite3.connect(home / "mlflow.db") as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
