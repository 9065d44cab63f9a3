"""Serving test helpers: models trained once per session, real servers on free loopback ports.

Imported by tests/serve/conftest.py and by tests/e2e/test_serve_*.py (which put this folder on
``sys.path``), so both share the fixtures.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A running ``mlwright serve`` subprocess."""

    def __init__(
        self, process: subprocess.Popen, port: int, grpc_port: int, log: Path, handle
    ) -> None:
        self.process = process
        self.handle = handle
        self.port = port
        self.grpc_port = grpc_port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.handle.close()
        return self.process.returncode

    def kill(self) -> int:
        """``kill -9`` of the server and anything it started (its own process group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        self.handle.close()
        return self.process.returncode


def start_server(
    models: list[str], env: dict[str, str], workdir: Path, *extra: str, timeout: float = 60.0
) -> Server:
    """Start a server and wait (bounded) until it reports ready."""
    port, grpc_port = free_port(), free_port()
    log = workdir / f"server-{port}.log"
    handle = log.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlwright",
            "serve",
            *models,
            "--port",
            str(port),
            "--grpc-port",
            str(grpc_port),
            *extra,
        ],
        env=env,
        cwd=workdir,
        stdout=handle,
        stderr=subprocess.STDOUT,
        # Its own process group, so that Server.kill reaches every process it starts.
        start_new_session=True,
    )
    server = Server(process, port, grpc_port, log, handle)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{server.output()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/v2/health/ready", timeout=1).status_code == 200:
                return server
        time.sleep(0.1)
    server.stop()
    raise AssertionError(f"server not ready within {timeout} s:\n{server.output()}")


@contextlib.contextmanager
def running(models: list[str], env: dict[str, str], workdir: Path, *extra: str) -> Iterator[Server]:
    server = start_server(models, env, workdir, *extra)
    try:
        yield server
    finally:
        server.stop()


REPO_ROOT = Path(__file__).resolve().parents[2]
CREDIT_TRAIN = REPO_ROOT / "examples" / "credit-g" / "train.csv"
CREDIT_TEST = REPO_ROOT / "examples" / "credit-g" / "test.csv"


def _train(output: Path, seed: int) -> Path:
    import mlwright

    mlwright.train(
        str(CREDIT_TRAIN),
        target="class",
        models=["lightgbm"],
        max_trials=1,
        seed=seed,
        output=str(output),
    )
    return output


@pytest.fixture(scope="session")
def credit_model_dir(tmp_path_factory) -> Path:
    """A LightGBM model trained on credit-g (small budget), as an artifact directory."""
    return _train(tmp_path_factory.mktemp("models") / "credit", seed=0)


@pytest.fixture(scope="session")
def credit_model_dir_b(tmp_path_factory) -> Path:
    """A second version (other seed) of the credit-g model, for swap tests."""
    return _train(tmp_path_factory.mktemp("models-b") / "credit", seed=1)


@pytest.fixture
def credit_copy(credit_model_dir, tmp_path) -> Path:
    """A private copy of the model directory (tests may replace it)."""
    target = tmp_path / "served" / "credit"
    shutil.copytree(credit_model_dir, target)
    return target


@pytest.fixture(scope="session")
def credit_records() -> list[dict]:
    """credit-g test rows as JSON records (without the target)."""
    import pandas as pd

    frame = pd.read_csv(CREDIT_TEST).drop(columns=["class"])
    return json.loads(frame.to_json(orient="records"))


@pytest.fixture
def serve_env(tmp_path) -> dict[str, str]:
    """Environment for a server subprocess: its own home, no inherited token."""
    env = dict(os.environ)
    env["MLWRIGHT_HOME"] = str(tmp_path / ".mlwright")
    env.pop("MLWRIGHT_TOKEN", None)
    return env
