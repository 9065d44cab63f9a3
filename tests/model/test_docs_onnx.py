"""Runs the examples of docs/onnx.md: its commands, and its Python block against its output."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGE = REPO_ROOT / "docs" / "onnx.md"


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", PAGE.read_text(), re.DOTALL)


def test_page_commands_run(tmp_path):
    (tmp_path / "examples").symlink_to(REPO_ROOT / "examples")
    commands = [line[2:] for line in _blocks("console")[0].splitlines() if line.startswith("$ ")]
    assert [shlex.split(command)[1] for command in commands] == ["train", "export", "predict"]
    outputs = []
    for command in commands:
        args = shlex.split(command)[1:]
        result = subprocess.run(
            [sys.executable, "-m", "mlwright", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=600,
            env={**os.environ, "MLWRIGHT_HOME": str(tmp_path / ".mlwright")},
        )
        assert result.returncode == 0, f"{command}\n{result.stderr}"
        outputs.append(" ".join(result.stdout.split()))
    shown = " ".join(_blocks("text")[0].split())
    printed = outputs[1]
    # The members and the parity line as the page shows them; the time taken varies.
    assert printed.split(" Wrote ")[0] == shown.split(" Wrote ")[0]
    assert (tmp_path / "credit.onnx").is_file()
    assert (tmp_path / "predictions.csv").is_file()


def test_page_python_example_prints_what_the_page_shows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").symlink_to(REPO_ROOT / "examples")
    python = _blocks("python")
    assert len(python) == 1
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(python[0], str(PAGE), "exec"), {})
    assert output.getvalue().strip() == _blocks("text")[1].strip()
