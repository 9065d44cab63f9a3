"""Runs the example of docs/serve.md: train, serve, and the curl requests it shows."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))

from serve_helpers import free_port, running  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGE = REPO_ROOT / "docs" / "serve.md"
_BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.DOTALL)


def _blocks() -> list[tuple[str, str]]:
    return _BLOCK.findall(PAGE.read_text())


@pytest.mark.slow
def test_the_page_example_runs(tmp_path):
    import os

    blocks = _blocks()
    bash = [index for index, (language, _) in enumerate(blocks) if language == "bash"]
    assert len(bash) == 3
    (tmp_path / "examples").symlink_to(REPO_ROOT / "examples")
    env = dict(os.environ, MLWRIGHT_HOME=str(tmp_path / ".mlwright"))
    env.pop("MLWRIGHT_TOKEN", None)
    train_line, serve_line = blocks[bash[0]][1].strip().splitlines()
    train = shlex.split(train_line)
    assert train[0] == "mlwright"
    subprocess.run(
        [sys.executable, "-m", *train],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    serve = shlex.split(serve_line)
    assert serve[:2] == ["mlwright", "serve"]
    assert serve[-2:] == ["--port", "8080"]
    model = [str(tmp_path / argument) for argument in serve[2:-2]]
    with running(model, env, tmp_path) as server:
        answers = []
        for index in bash[1:]:
            command = shlex.split(blocks[index][1].strip())
            command = [
                part.replace("localhost:8080", f"127.0.0.1:{server.port}") for part in command
            ]
            result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
            expected = blocks[index + 1][1].strip()
            answers.append((json.loads(result.stdout), expected))
    (prediction, shown), (error, shown_error) = answers
    shown_prediction = json.loads(shown)
    assert set(prediction) == set(shown_prediction)
    assert prediction["predictions"] == shown_prediction["predictions"]
    assert prediction["model"] == shown_prediction["model"]
    for key, value in shown_prediction["probabilities"][0].items():
        assert prediction["probabilities"][0][key] == pytest.approx(value, abs=5e-4)
    first_detail = re.search(r'"detail":\[(\{.*?\})', shown_error).group(1)
    assert error["detail"][0] == json.loads(first_detail)
    assert error["error"].startswith(shown_error.split('"error":"')[1].split("...")[0])
    assert free_port() > 0
