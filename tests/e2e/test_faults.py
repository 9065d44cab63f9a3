"""``kill -9`` at the worst moments, on real components, and what is left afterwards.

Each test runs the real command in its own process group (``start_new_session``), stops it at
a chosen moment and kills the whole group with SIGKILL: no handler, no ``finally`` block, no
flush runs. Then it checks what a user would find: the artifact folder, the MLflow SQLite store
and registry (``tmp_path``), the prediction log, and that running the command again works.

The moments are found by watching for what the process does, never by sleeping and hoping:
the staging folder an artifact is built in (``.tmp-<name>-...``, see
``mlwright.model._artifact._staged``), the training run's row in the MLflow store, a new row in
the registry's ``model_versions`` table. On seeing it the test freezes the process group
(SIGSTOP) so that the state it checked is the state the kill hits, then kills it.
"""

# The fixtures come from tests/serve/serve_helpers.py and are parameters of the tests here.
# ruff: noqa: F811

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))

from serve_helpers import (  # noqa: E402
    CREDIT_TEST,
    CREDIT_TRAIN,
    credit_model_dir,  # noqa: F401  (fixtures)
    credit_records,  # noqa: F401
    running,
    serve_env,  # noqa: F401
    start_server,
)

import mlwright  # noqa: E402
from mlwright.errors import ModelError  # noqa: E402

pytestmark = pytest.mark.slow


# -- running and killing commands ------------------------------------------------------------


def cli(env: dict[str, str], cwd: Path, *args: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlwright", *map(str, args)],
        env={**env, "COLUMNS": "400"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def launch(env: dict[str, str], cwd: Path, *args: object) -> subprocess.Popen:
    """Start a command in its own process group (its output in ``cwd/killed.out``)."""
    with (cwd / "killed.out").open("a") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "mlwright", *map(str, args)],
            env=env,
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def freeze_when(process: subprocess.Popen, moment: Callable[[], bool], timeout: float) -> None:
    """Watch (a tight loop: saving takes milliseconds) until ``moment()``; then SIGSTOP the
    process group, so nothing moves between the check and the kill."""
    deadline = time.monotonic() + timeout
    while not moment():
        if process.poll() is not None:
            raise AssertionError(f"the process ended (exit {process.returncode}) before the moment")
        if time.monotonic() > deadline:
            kill(process)
            raise AssertionError(f"the moment did not come within {timeout} s")
    os.killpg(process.pid, signal.SIGSTOP)


def kill(process: subprocess.Popen) -> None:
    """``kill -9`` of the process group (a stopped process dies too)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


# -- what is checked afterwards ---------------------------------------------------------------


def sqlite_count(database: Path, sql: str) -> int:
    """A count from a database another process is writing (0 while it has no such table)."""
    if not database.is_file():
        return 0
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
        try:
            return int(connection.execute(sql).fetchone()[0])
        finally:
            connection.close()
    except sqlite3.OperationalError:  # not created yet, or locked for a moment
        return 0


def assert_sqlite_intact(database: Path) -> None:
    connection = sqlite3.connect(database, timeout=30)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        connection.close()


def assert_store_lists_runs(home: Path) -> list:
    """The MLflow store is intact, opens, and lists its runs; returns them."""
    from mlflow.tracking import MlflowClient

    database = home / "mlflow.db"
    assert_sqlite_intact(database)
    client = MlflowClient(f"sqlite:///{database}")
    experiments = [item.experiment_id for item in client.search_experiments()]
    return list(client.search_runs(experiments))


def registered(env: dict[str, str], cwd: Path) -> dict[str, dict]:
    """``mlwright models list --json`` by name (the registry as a user sees it)."""
    result = cli(env, cwd, "models", "list", "--json")
    assert result.returncode == 0, result.stderr
    return {item["name"]: item for item in json.loads(result.stdout)}


def assert_whole_or_refused(folder: Path) -> bool:
    """``mlwright.load`` of a folder a kill interrupted: a ModelError, or a whole artifact
    (every file as its MANIFEST lists), never a part of one. True when it loaded."""
    try:
        mlwright.load(folder)
    except ModelError:
        return False
    return True


def train_args(output: Path, *budget: str) -> list[object]:
    return [
        "train",
        CREDIT_TRAIN,
        "--target",
        "class",
        "--models",
        "lightgbm",
        "--seed",
        "0",
        "--register",
        "credit",
        "--quiet",
        "--output",
        output,
        *budget,
    ]


# -- the MLflow store's creation ----------------------------------------------------------


def test_a_store_killed_while_it_is_created_is_created_again(serve_env, tmp_path):
    # The first command in a folder creates the SQLite store (MLflow's migrations, a second or
    # more); killed half-way, it once left a store no command could open again.
    home = Path(serve_env["MLWRIGHT_HOME"])
    process = launch(serve_env, tmp_path, "models", "list")
    freeze_when(
        process,
        lambda: home.is_dir() and any(p.name.endswith(".migrating") for p in home.iterdir()),
        timeout=120,
    )
    kill(process)
    # Killed while migrating a hidden file: the store itself does not exist yet.
    assert not (home / "mlflow.db").exists()
    # The next command creates it whole.
    assert registered(serve_env, tmp_path) == {}
    assert assert_store_lists_runs(home) == []


# -- (a) mlwright train -----------------------------------------------------------------------


def test_train_killed_mid_search_leaves_no_model_and_registers_nothing(serve_env, tmp_path):
    home = Path(serve_env["MLWRIGHT_HOME"])
    target = tmp_path / "out" / "credit"
    # A budget far longer than the test: the search is still running when it is killed.
    process = launch(serve_env, tmp_path, *train_args(target, "--time-limit", "300"))
    # The MLflow run is opened in the background while the data is read and the search
    # starts; a few seconds after it exists the search is well under way.
    wait_for(
        lambda: sqlite_count(home / "mlflow.db", "SELECT COUNT(*) FROM runs") > 0,
        120,
        "the training's MLflow run",
    )
    time.sleep(3.0)
    assert process.poll() is None, (tmp_path / "killed.out").read_text()
    kill(process)

    # Nothing was written where the model goes (its folder is made only when saving).
    assert not target.exists()
    assert not target.parent.exists() or not list(target.parent.iterdir())
    with pytest.raises(ModelError, match="No model at"):
        mlwright.load(target)
    runs = assert_store_lists_runs(home)
    # The killed run is recorded (it was opened before training), still marked running.
    assert [run.info.status for run in runs] == ["RUNNING"]
    assert registered(serve_env, tmp_path) == {}

    rerun = cli(serve_env, tmp_path, *train_args(target, "--max-trials", "1"))
    assert rerun.returncode == 0, rerun.stderr
    assert mlwright.load(target).target == "class"
    assert [v["version"] for v in registered(serve_env, tmp_path)["credit"]["versions"]] == [1]
    assert len(assert_store_lists_runs(home)) == 2


@pytest.mark.parametrize("moment", ["writing the artifact", "adding the model report"])
def test_train_killed_mid_save_never_leaves_a_half_artifact(moment, serve_env, tmp_path):
    home = Path(serve_env["MLWRIGHT_HOME"])
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "credit"
    first_save = moment == "writing the artifact"

    def staging() -> bool:
        names = os.listdir(folder)
        # The first save stages the artifact before it exists; adding the report stages a
        # copy of the saved artifact.
        return any(name.startswith(".tmp-credit-") for name in names) and (
            ("credit" in names) != first_save
        )

    process = launch(serve_env, tmp_path, *train_args(target, "--max-trials", "1"))
    freeze_when(process, staging, timeout=300)
    kill(process)

    leftovers = [path for path in folder.iterdir() if path.name.startswith(".tmp-credit-")]
    assert leftovers  # killed before the staging folder was renamed into place
    for leftover in leftovers:
        assert_whole_or_refused(leftover)
    if first_save:
        assert not target.exists()
        with pytest.raises(ModelError, match="No model at"):
            mlwright.load(target)
    else:
        # The artifact saved before the report is intact: it loads, without the report.
        assert mlwright.load(target).target == "class"
        assert not (target / "report.html").exists()
    # Registration comes after the save: nothing is registered.
    assert registered(serve_env, tmp_path) == {}
    # The run is opened in the background while training runs: a short training can be
    # killed before it exists. Either way the store opens and lists what it has.
    assert [run.info.status for run in assert_store_lists_runs(home)] in ([], ["RUNNING"])

    rerun = cli(serve_env, tmp_path, *train_args(target, "--max-trials", "1"))
    if not first_save:
        # The intact model is never replaced by a new training without being asked.
        assert rerun.returncode == 2, rerun.stderr
        assert "A model already exists" in " ".join(rerun.stderr.split())
        target = folder / "credit-2"
        rerun = cli(serve_env, tmp_path, *train_args(target, "--max-trials", "1"))
    assert rerun.returncode == 0, rerun.stderr
    assert (target / "report.html").is_file()
    assert mlwright.load(target).target == "class"
    assert [v["version"] for v in registered(serve_env, tmp_path)["credit"]["versions"]] == [1]


# -- (b) the server, logging predictions under load -------------------------------------------


def test_server_killed_under_load_has_logged_every_answered_prediction(
    credit_model_dir, serve_env, tmp_path, credit_records
):
    from mlwright.serve import read_predictions

    database = tmp_path / "predictions.db"
    log = f"sqlite:///{database}"
    server = start_server([str(credit_model_dir)], serve_env, tmp_path, "--log", log)
    acknowledged: dict[str, int] = {}  # request id -> rows, for every 200 answer
    refused: list[object] = []  # any other answer, or a transport error before the kill
    killing = threading.Event()

    def client(index: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            number = 0
            while not killing.is_set():
                rows = 1 + number % 3
                start = (index * 997 + number * 3) % (len(credit_records) - 3)
                request_id = f"load-{index}-{number}"
                number += 1
                try:
                    answer = http.post(
                        "/predict",
                        json={"records": credit_records[start : start + rows]},
                        headers={"X-Request-ID": request_id},
                    )
                except httpx.HTTPError as err:
                    if not killing.is_set():
                        refused.append(repr(err))
                    continue
                if answer.status_code == 200:
                    acknowledged[request_id] = rows
                else:
                    refused.append((answer.status_code, answer.text[:200]))

    threads = [threading.Thread(target=client, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(acknowledged) >= 600, 120, "600 answered predictions")
    finally:
        killing.set()
        server.kill()  # while the clients are still sending
        for thread in threads:
            thread.join(60)
    assert server.process.returncode == -signal.SIGKILL
    assert not refused, refused[:5]

    assert_sqlite_intact(database)
    frame = read_predictions(log)
    logged = frame.groupby("request_id").size().to_dict()
    missing = {rid: rows for rid, rows in acknowledged.items() if logged.get(rid) != rows}
    assert not missing, f"{len(missing)} of {len(acknowledged)}: {list(missing.items())[:5]}"
    # Each request's rows are all there, numbered from 0.
    rows_of = frame.groupby("request_id")["row"].apply(sorted)
    assert all(rows == list(range(len(rows))) for rows in rows_of)
    # The aggregates beside the log cover exactly the rows up to their watermark.
    connection = sqlite3.connect(database)
    try:
        watermark = connection.execute(
            "SELECT value FROM prediction_log_state WHERE key = 'aggregated_id'"
        ).fetchone()[0]
        (folded,) = connection.execute(
            "SELECT COALESCE(SUM(count), 0) FROM prediction_aggregates WHERE resolution = 1"
        ).fetchone()
        (rows_below,) = connection.execute(
            "SELECT COUNT(*) FROM predictions WHERE id <= ?", (watermark,)
        ).fetchone()
    finally:
        connection.close()
    assert folded == rows_below

    # A restarted server takes the same log and serves again.
    with running([str(credit_model_dir)], serve_env, tmp_path, "--log", log) as again:
        answer = httpx.post(
            f"{again.url}/predict",
            json={"records": credit_records[:1]},
            headers={"X-Request-ID": "after-restart"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
    after = read_predictions(log)
    assert "after-restart" in set(after["request_id"])
    assert len(after) == len(frame) + 1


# -- (c) mlwright retrain and mlwright monitor --retrain-on-drift ----------------------------


def _champion(env: dict[str, str], cwd: Path) -> None:
    """``credit`` version 1, trained small, with the alias champion."""
    trained = cli(env, cwd, *train_args(cwd / "champion", "--max-trials", "1"))
    assert trained.returncode == 0, trained.stderr
    promoted = cli(env, cwd, "models", "promote", "credit", "1")
    assert promoted.returncode == 0, promoted.stderr


def _drifted_log(env: dict[str, str], cwd: Path, records: list[dict]) -> Path:
    """A real server's log of drifted traffic (everyone 40 years older, loans three times as
    long), with the true outcomes joined by ``mlwright feedback``; the log's path."""
    database = cwd / "predictions.db"
    labels = pd.read_csv(CREDIT_TEST)["class"].tolist()
    outcomes = []
    with running(["models:/credit@champion"], env, cwd, "--log", f"sqlite:///{database}") as s:
        with httpx.Client(base_url=s.url, timeout=30) as http:
            for start in range(0, len(records), 25):
                part = [
                    {**record, "age": record["age"] + 40, "duration": record["duration"] * 3}
                    for record in records[start : start + 25]
                ]
                request_id = f"drifted-{start}"
                answer = http.post(
                    "/predict", json={"records": part}, headers={"X-Request-ID": request_id}
                )
                assert answer.status_code == 200, answer.text
                outcomes += [
                    {"request_id": request_id, "row": row, "actual": labels[start + row]}
                    for row in range(len(part))
                ]
    pd.DataFrame(outcomes).to_csv(cwd / "outcomes.csv", index=False)
    joined = cli(env, cwd, "feedback", database, cwd / "outcomes.csv")
    assert joined.returncode == 0, joined.stderr
    return database


def _aliases(env: dict[str, str], cwd: Path) -> tuple[dict[str, int], list[int]]:
    model = registered(env, cwd)["credit"]
    return model["aliases"], sorted(v["version"] for v in model["versions"])


@pytest.mark.parametrize(
    ("command", "moment"),
    [
        ("retrain", "saving the challenger"),
        ("retrain", "registering the challenger"),
        ("monitor", "registering the challenger"),
    ],
)
def test_retraining_killed_mid_run_leaves_aliases_unchanged_or_fully_moved(
    command, moment, serve_env, tmp_path, credit_records, monkeypatch
):
    home = Path(serve_env["MLWRIGHT_HOME"])
    monkeypatch.setenv("MLWRIGHT_HOME", str(home))  # mlwright.load("models:/...") here
    _champion(serve_env, tmp_path)
    challenger = tmp_path / "challenger"
    if command == "retrain":
        args: list[object] = ["retrain", "models:/credit@champion", "--data", CREDIT_TEST]
        args += ["--max-trials", "1", "--models", "lightgbm", "--output", challenger]
    else:
        database = _drifted_log(serve_env, tmp_path, credit_records)
        # One drifted feature in 20 is enough to call the dataset drifted here.
        (tmp_path / "alerts.json").write_text(json.dumps({"drift": {"drift_share": 0.05}}))
        args = ["monitor", "models:/credit@champion", "--log", f"sqlite:///{database}"]
        args += ["--alerts", tmp_path / "alerts.json", "--retrain-on-drift"]
        # The challenger goes to a temporary folder: keep it in tmp_path.
        (tmp_path / "tmp").mkdir()
        serve_env = {**serve_env, "TMPDIR": str(tmp_path / "tmp")}
    args += ["--promote", "always"]

    versions_sql = "SELECT COUNT(*) FROM model_versions"
    if moment == "saving the challenger":
        moment_came = lambda: any(  # noqa: E731
            name.startswith(".tmp-challenger-") for name in os.listdir(tmp_path)
        )
    else:
        moment_came = lambda: sqlite_count(home / "mlflow.db", versions_sql) > 1  # noqa: E731
    process = launch(serve_env, tmp_path, *args)
    freeze_when(process, moment_came, timeout=300)
    kill(process)

    runs = assert_store_lists_runs(home)
    assert len(runs) >= 1
    aliases, versions = _aliases(serve_env, tmp_path)
    if moment == "saving the challenger":
        assert (aliases, versions) == ({"champion": 1}, [1])
    else:
        # Killed between registering version 2 and moving the aliases, or while moving them:
        # each alias names a whole version, and the champion is the old one or the new one.
        assert versions == [1, 2]
        assert aliases["champion"] in (1, 2)
        assert set(aliases) <= {"champion", "challenger"}
    for alias in aliases:
        assert mlwright.load(f"models:/credit@{alias}").target == "class"

    rerun = cli(serve_env, tmp_path, *args)
    assert rerun.returncode == 0, rerun.stderr
    aliases, versions = _aliases(serve_env, tmp_path)
    assert aliases == {"champion": versions[-1]}  # the new champion is no longer a challenger
    assert mlwright.load("models:/credit@champion").target == "class"
    assert_store_lists_runs(home)
