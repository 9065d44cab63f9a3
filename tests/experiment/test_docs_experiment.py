"""Runs the examples of docs/experiment.md and checks their output against the page."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))

from serve_helpers import (  # noqa: E402
    credit_model_dir,  # noqa: F401  (fixtures)
    credit_model_dir_b,  # noqa: F401
    running,
    serve_env,  # noqa: F401
)

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGE = REPO_ROOT / "docs" / "experiment.md"


def _blocks() -> list[tuple[str, str, str]]:
    example = PAGE.read_text()
    example = example[example.index("## Example") :]
    return re.findall(r"```(bash|python)\n(.*?)```\s*(?:\n[^`]*?)?```\n(.*?)```", example, re.S)


def test_page_has_its_examples() -> None:
    assert [kind for kind, _, _ in _blocks()] == ["bash", "python", "python"]


@pytest.mark.slow
def test_plan_example_prints_what_the_page_shows(tmp_path) -> None:
    _, command, shown = _blocks()[0]
    arguments = command.split()
    assert arguments[0] == "mlwright"
    done = subprocess.run(
        [sys.executable, "-m", "mlwright", *arguments[1:]],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == shown.strip()


def test_python_example_prints_what_the_page_shows(tmp_path) -> None:
    _, code, shown = _blocks()[1]
    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, str(PAGE), "exec"), {})  # noqa: S102  (the page's own example)
    finally:
        os.chdir(cwd)
    assert out.getvalue().strip() == shown.strip()


@pytest.mark.slow
def test_triton_example_routes_by_arm_on_a_real_server(
    credit_model_dir,  # noqa: F811
    credit_model_dir_b,  # noqa: F811
    serve_env,  # noqa: F811
    tmp_path,
) -> None:
    """The page's Triton client example against ``mlwright serve`` on free loopback ports,
    with the experiment ``ab`` the page starts (arms given as the two trained versions)."""
    import httpx
    import pandas as pd

    from mlwright.experiment import start_experiment

    _, code, shown = _blocks()[2]
    log = f"sqlite:///{tmp_path / 'predictions.db'}"
    with running([str(credit_model_dir)], serve_env, tmp_path, "--log", log) as server:
        start_experiment(
            "ab",
            model="credit",
            unit_key="user_id",
            log=log,
            references={"champion": str(credit_model_dir), "challenger": str(credit_model_dir_b)},
        )
        # The server picks running experiments up within seconds: wait until an answer
        # names its arm.
        row = pd.read_csv(REPO_ROOT / "examples" / "credit-g" / "test.csv").iloc[0]
        body = {
            "inputs": [
                {
                    "name": column,
                    "shape": [1],
                    "datatype": "BYTES" if isinstance(value, str) else "FP64",
                    "data": [value if isinstance(value, str) else float(value)],
                }
                for column, value in row.drop("class").items()
            ]
        }
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            answer = httpx.post(f"{server.url}/v2/models/credit/infer", json=body)
            assert answer.status_code == 200, answer.text
            if "arm" in answer.json()["parameters"]:
                break
            time.sleep(0.1)
        code = code.replace("localhost:8080", f"127.0.0.1:{server.port}")
        code = code.replace("localhost:8081", f"127.0.0.1:{server.grpc_port}")
        out = io.StringIO()
        cwd = os.getcwd()
        os.chdir(REPO_ROOT)  # the example reads examples/credit-g/test.csv
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(code, str(PAGE), "exec"), {})  # noqa: S102  (the page's example)
        finally:
            os.chdir(cwd)
    assert out.getvalue().strip() == shown.strip()
