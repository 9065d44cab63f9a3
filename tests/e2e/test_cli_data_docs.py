"""Runs the examples of docs/profile.md, docs/check.md and docs/run.md.

Shell examples run as subprocesses in a scratch folder (with ``examples/`` linked in) and must
succeed; Python examples run in-process and must print what the page shows.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PAGES = ["profile.md", "check.md", "run.md"]
_BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.DOTALL)


def _blocks(page: str) -> list[tuple[str, str]]:
    return _BLOCK.findall((REPO / "docs" / page).read_text())


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    (tmp_path / "examples").symlink_to(REPO / "examples")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("page", PAGES)
def test_shell_examples_run(page, workdir):
    commands = [body.strip() for language, body in _blocks(page) if language == "bash"]
    assert commands, f"{page} has no shell example"
    for command in commands:
        words = shlex.split(command)
        assert words[0] == "mlwright", command
        result = subprocess.run(
            [sys.executable, "-m", "mlwright", *words[1:]],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "COLUMNS": "100"},
        )
        assert result.returncode == 0, (command, result.stderr)
        if "--output" in words:
            output = workdir / words[words.index("--output") + 1]
            assert (output / "profile.html").is_file(), command
            assert (output / "profile.json").is_file(), command


@pytest.mark.parametrize("page", PAGES)
def test_documented_terminal_output_matches(page, workdir):
    """The first lines of each documented terminal output appear in the real output."""
    blocks = _blocks(page)
    for index, (language, body) in enumerate(blocks):
        if language != "bash" or index + 1 >= len(blocks) or blocks[index + 1][0] != "":
            continue
        shown = [line.strip() for line in blocks[index + 1][1].splitlines()]
        words = shlex.split(body.strip())
        result = subprocess.run(
            [sys.executable, "-m", "mlwright", *words[1:]],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "COLUMNS": "100"},
        )
        printed = " ".join(result.stdout.split())
        for line in shown:
            if line and "..." not in line and not line.startswith(("┃", "┏", "┡", "│", "├")):
                assert " ".join(line.split()) in printed or line in result.stdout, line


@pytest.mark.parametrize("page", ["profile.md", "check.md"])
def test_python_examples_print_what_the_page_shows(page, workdir):
    blocks = _blocks(page)
    examples = [
        (body, blocks[index + 1][1] if index + 1 < len(blocks) else None)
        for index, (language, body) in enumerate(blocks)
        if language == "python"
    ]
    assert examples
    for code, expected in examples:
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            exec(compile(code, page, "exec"), {})
        assert output.getvalue().strip() == expected.strip()
