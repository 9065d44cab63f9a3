"""Runs the example of docs/monitor.md and checks what it prints against the page."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGE = REPO_ROOT / "docs" / "monitor.md"


def _example() -> tuple[str, str]:
    """The command of the page's example and the output shown after it."""
    text = PAGE.read_text()
    example = text[text.index("## Example") :]
    match = re.search(r"```bash\n(.*?)```\s*```\n(.*?)```", example, flags=re.S)
    assert match, "docs/monitor.md lost its example"
    return match.group(1), match.group(2)


def test_docs_example_runs_and_prints_what_the_page_shows(tmp_path):
    command, output = _example()
    arguments = shlex.split(command.strip())
    assert arguments[0] == "mlwright"
    arguments = [
        str(REPO_ROOT / argument) if argument.startswith("examples/") else argument
        for argument in arguments[1:]
    ]
    completed = subprocess.run(
        [sys.executable, "-m", "mlwright", *arguments],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    shown = output.strip().splitlines()
    printed = completed.stdout.strip().splitlines()
    assert printed[0] == shown[0]
    assert printed[-1] == shown[-1]
    assert "data:image/png;base64," in (tmp_path / "drift.html").read_text()
