"""Bad input at the command line: one paragraph naming the file/column and the fix, exit 2.

The corpus in ``tests/data/bad_inputs`` (``cases.json`` lists each file, the target and text the
message must hold) goes through ``mlwright check``; a few cases also through ``profile`` and
``run``, plus inputs made here (missing paths, unreachable databases, a missing test file).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlwright.errors import EXIT_USER_ERROR

# Every case is a fresh interpreter; together they take a while.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "data" / "bad_inputs"
CASES = json.loads((CORPUS / "cases.json").read_text())
CREDIT = REPO / "examples" / "credit-g" / "train.csv"


def run_cli(
    *args: object, cwd: Path | None = None, home: Path | None = None
) -> subprocess.CompletedProcess:
    # A wide terminal: messages are checked as one line of text.
    env = {**os.environ, "COLUMNS": "400"}
    if home is not None:
        env["MLWRIGHT_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "mlwright", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        env=env,
    )


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode == EXIT_USER_ERROR, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Error:"), result.stderr
    message = " ".join(result.stderr.split())
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


@pytest.mark.parametrize("case", CASES, ids=[case["file"] for case in CASES])
def test_check_rejects_corpus_file(case, tmp_path):
    result = run_cli("check", CORPUS / case["file"], "--target", case["target"], cwd=tmp_path)
    assert_user_error(result, *case["match"])


@pytest.mark.parametrize(
    ("command", "name"),
    [
        ("profile", "binary_image.csv"),
        ("profile", "ragged_rows.csv"),
        ("profile", "target_misspelled.csv"),
        ("run", "empty.csv"),
        ("run", "target_single_value.csv"),
        ("run", "duplicate_columns.csv"),
    ],
)
def test_profile_and_run_reject_corpus_files(command, name, tmp_path):
    case = next(case for case in CASES if case["file"] == name)
    result = run_cli(command, CORPUS / name, "--target", case["target"], cwd=tmp_path)
    assert_user_error(result, *case["match"])
    assert not (tmp_path / "mlwright-output").exists() or command == "run"


def test_nonexistent_path(tmp_path):
    result = run_cli("check", tmp_path / "nope" / "train.csv", "--target", "y")
    assert_user_error(result, "train.csv", "does not exist")


def test_nonexistent_test_file():
    result = run_cli("check", CREDIT, "--target", "class", "--test", "no_such_test.csv")
    assert_user_error(result, "no_such_test.csv", "does not exist")


def test_missing_target_suggests_the_closest_name():
    result = run_cli("check", CREDIT, "--target", "clas")
    assert_user_error(result, "'clas'", "Did you mean 'class'")


def test_all_missing_target(tmp_path):
    path = tmp_path / "unlabelled.csv"
    path.write_text("x,y\n" + "".join(f"{i},\n" for i in range(20)))
    assert_user_error(run_cli("check", path, "--target", "y"), "'y'", "missing")


def test_one_row_dataset_for_profile_without_target(tmp_path):
    path = tmp_path / "single.csv"
    path.write_text("a,b\n1,x\n")
    assert_user_error(run_cli("profile", path), "single.csv", "only 1 row")


def test_unreachable_database_url():
    # Port 9 on loopback: nothing listens, the connection is refused at once.
    url = "postgresql://analyst:secret@127.0.0.1:9/warehouse"
    result = run_cli("check", url, "--query", "SELECT * FROM loans", "--target", "y")
    message = assert_user_error(result, "127.0.0.1")
    assert "secret" not in message  # passwords are masked


def test_sqlite_url_to_a_missing_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'missing.db'}"
    result = run_cli("check", url, "--query", "SELECT 1", "--target", "y")
    assert_user_error(result, "missing.db")


def test_query_against_a_missing_table(tmp_path):
    import sqlite3

    database = tmp_path / "shop.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE orders (id INTEGER, total REAL)")
    result = run_cli(
        "check", f"sqlite:///{database}", "--query", "SELECT * FROM customers", "--target", "y"
    )
    assert_user_error(result, "customers")


@pytest.mark.parametrize(
    ("command", "na_values", "fragments"),
    [
        ("check", '{"purpse": ["?"]}', ["na_values names the column 'purpse'", "'purpose'"]),
        ("profile", '{"purpose": ["?"', ["--na-values", "not valid JSON", "--na-values '?,-'"]),
        ("train", '{"purpose": "?"}', ["na_values['purpose'] must be a list of strings"]),
        ("run", '{"purpose": [true]}', ["na_values['purpose'] holds True"]),
    ],
)
def test_bad_na_values(command, na_values, fragments, tmp_path):
    result = run_cli(command, CREDIT, "--target", "class", "--na-values", na_values, cwd=tmp_path)
    assert_user_error(result, *fragments)
    assert not (tmp_path / "mlwright-output").exists() or command == "run"


# -- where predictions are written: a full disk, a device, a pipe, a link ----------------------

CREDIT_TEST = REPO / "examples" / "credit-g" / "test.csv"


@pytest.fixture(scope="module")
def credit_model(tmp_path_factory) -> Path:
    import mlwright

    output = tmp_path_factory.mktemp("predict-output") / "model"
    mlwright.train(CREDIT, target="class", models=["lightgbm"], max_trials=1, output=output)
    return output


@pytest.mark.skipif(
    not (Path("/dev/full").exists() and Path("/dev/full").is_char_device()),
    reason="needs Linux's /dev/full (every write fails with ENOSPC) for a real full disk",
)
def test_predictions_to_a_full_disk_are_a_clear_error_and_the_device_stays(credit_model):
    result = run_cli("predict", credit_model, CREDIT_TEST, "--output", "/dev/full")
    assert_user_error(result, "'/dev/full'", "No space left on device", "another output path")
    # Written in place: a temporary file renamed over it would have replaced the device.
    assert Path("/dev/full").is_char_device()


def test_predictions_through_a_pipe_and_a_link(credit_model, tmp_path):
    pipe = tmp_path / "predictions.fifo"
    os.mkfifo(pipe)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_text()), daemon=True)
    reader.start()
    assert run_cli("predict", credit_model, CREDIT_TEST, "--output", pipe).returncode == 0
    reader.join(60)
    assert stat.S_ISFIFO(pipe.stat().st_mode)
    assert len(received[0].splitlines()) == 251  # the header and one line per test row
    target, link = tmp_path / "predictions.csv", tmp_path / "latest.csv"
    target.write_text("old\n")
    link.symlink_to(target)
    assert run_cli("predict", credit_model, CREDIT_TEST, "--output", link).returncode == 0
    # The file the link names is replaced, never the link.
    assert link.is_symlink()
    assert target.read_text() == received[0]


def test_predictions_under_a_file_name_the_file(credit_model, tmp_path):
    (tmp_path / "results").write_text("not a folder\n")
    result = run_cli("predict", credit_model, CREDIT_TEST, "--output", tmp_path / "results/p.csv")
    assert_user_error(result, "/results/p.csv'", "/results' is a file, where a folder is needed")
    assert (tmp_path / "results").read_text() == "not a folder\n"


# -- where a model and the MLflow store are written: a file on the way, read-only, full ------

TRAIN_SMALL = ("--target", "class", "--models", "lightgbm", "--max-trials", "1", "--quiet")


def test_train_output_under_a_file_fails_before_training(tmp_path):
    (tmp_path / "models").write_text("not a folder\n")
    result = run_cli("train", CREDIT, *TRAIN_SMALL, "--output", "models/credit", cwd=tmp_path)
    assert_user_error(
        result, "'models/credit'", "'models' is a file, where a folder is needed", "output path"
    )
    assert (tmp_path / "models").read_text() == "not a folder\n"
    # Checked before the MLflow run is opened: nothing was recorded.
    assert not (tmp_path / ".mlwright").exists()


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A real small file system at ``folder`` (tmpfs); skips where mounting is not allowed."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root and mount(8) for a real full or read-only file system (CI has)")
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mount is not permitted here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def remount(folder: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(folder)], check=True)


def fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` to the last byte; the filler's path."""
    filler = folder / "filler"
    with filler.open("wb") as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * (1 << 20))
            handle.flush()
    return filler


def test_train_output_on_a_read_only_disk_fails_before_training(tmp_path):
    with tmpfs(tmp_path / "ro", "1m") as folder:
        remount(folder, "ro")
        result = run_cli("train", CREDIT, *TRAIN_SMALL, "--output", folder / "credit", cwd=tmp_path)
        assert_user_error(result, "/ro/credit'", "Read-only file system", "writable")
        assert not (tmp_path / ".mlwright").exists()


def test_train_output_on_a_full_disk_leaves_nothing_behind(tmp_path):
    with tmpfs(tmp_path / "full", "64k") as folder:
        result = run_cli("train", CREDIT, *TRAIN_SMALL, "--output", folder / "credit", cwd=tmp_path)
        assert_user_error(result, "/full/credit'", "No space left on device", "Free space")
        # The staging folder is removed: no half artifact, and the space is given back.
        assert list(folder.iterdir()) == []


def _store_state(home: Path) -> tuple:
    connection = sqlite3.connect(home / "mlflow.db")
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        runs = connection.execute("SELECT status FROM runs ORDER BY start_time").fetchall()
        versions = connection.execute("SELECT COUNT(*) FROM model_versions").fetchone()[0]
    finally:
        connection.close()
    return [status for (status,) in runs], versions


@pytest.mark.parametrize("trouble", ["read-only", "full"])
def test_a_store_on_a_read_only_or_full_disk_is_a_clear_error_and_stays_intact(trouble, tmp_path):
    with tmpfs(tmp_path / "disk", "16m") as folder:
        home = folder / ".mlwright"
        first = run_cli(
            "train", CREDIT, *TRAIN_SMALL, "--register", "credit", "--output", "a", cwd=tmp_path,
            home=home,
        )  # fmt: skip
        assert first.returncode == 0, first.stderr
        before = _store_state(home)
        assert before == (["FINISHED"], 1)
        filler = None
        if trouble == "read-only":
            remount(folder, "ro")
        else:
            filler = fill(folder)
        result = run_cli(
            "train", CREDIT, *TRAIN_SMALL, "--register", "credit", "--output", "b", cwd=tmp_path,
            home=home,
        )  # fmt: skip
        message = assert_user_error(result, f"{home}", "MLWRIGHT_HOME")
        if trouble == "full":
            assert "Its disk is full or read-only" in message
        # Space back, or writable again: the store is as it was, and takes the next run.
        if filler is not None:
            filler.unlink()
        else:
            remount(folder, "rw")
        assert _store_state(home) == before
        again = run_cli(
            "train", CREDIT, *TRAIN_SMALL, "--register", "credit", "--output", "c", cwd=tmp_path,
            home=home,
        )  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert _store_state(home) == (["FINISHED", "FINISHED"], 2)
