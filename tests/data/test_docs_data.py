"""Runs the examples of docs/data.md and compares what they print with the page."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGE = REPO_ROOT / "docs" / "data.md"
_BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.DOTALL)


def _examples() -> list[tuple[str, str | None]]:
    """(python code, expected output or None) pairs in page order."""
    blocks = _BLOCK.findall(PAGE.read_text())
    pairs: list[tuple[str, str | None]] = []
    for index, (language, body) in enumerate(blocks):
        if language != "python":
            continue
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        expected = following[1] if following is not None and following[0] == "" else None
        pairs.append((body, expected))
    return pairs


def test_page_has_examples():
    assert len(_examples()) >= 6


def test_examples_print_what_the_page_shows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").symlink_to(REPO_ROOT / "examples")
    namespace: dict = {}
    for code, expected in _examples():
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            exec(compile(code, str(PAGE), "exec"), namespace)
        if expected is not None:
            assert output.getvalue().strip() == expected.strip(), code
