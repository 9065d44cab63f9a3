"""Runs the Python example of docs/automl.md."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGE = REPO_ROOT / "docs" / "automl.md"


def test_page_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").symlink_to(REPO_ROOT / "examples")
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.DOTALL)
    assert blocks
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(blocks[0], str(PAGE), "exec"), {})
    lines = output.getvalue().strip().splitlines()
    assert len(lines) == 4  # three candidates and the summary
    assert lines[-1].startswith("roc_auc ")
