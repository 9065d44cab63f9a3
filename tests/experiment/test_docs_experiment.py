"""Runs the examples of docs/experiment.md and checks their output against the page."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "experiment.md"


def _blocks() -> list[tuple[str, str, str]]:
    example = PAGE.read_text()
    example = example[example.index("## Example") :]
    return re.findall(r"```(bash|python)\n(.*?)```\s*(?:\n[^`]*?)?```\n(.*?)```", example, re.S)


def test_page_has_both_examples() -> None:
    assert [kind for kind, _, _ in _blocks()] == ["bash", "python"]


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
