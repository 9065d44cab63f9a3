"""Pages the user names are written in one step: the old file or the new, never half."""

from __future__ import annotations

import os

import pytest

from mlwright._files import write_text_atomically
from mlwright.errors import DataError


def test_a_page_replaces_the_old_one_and_leaves_no_temporary(tmp_path):
    page = tmp_path / "out" / "drift.html"
    assert write_text_atomically(page, "first", "the drift page") == page
    write_text_atomically(page, "second", "the drift page")
    assert page.read_text() == "second"
    assert sorted(p.name for p in page.parent.iterdir()) == ["drift.html"]


def test_a_write_interrupted_midway_keeps_the_old_page(tmp_path, monkeypatch):
    page = tmp_path / "report.html"
    page.write_text("the old report")

    def interrupted(descriptor):
        raise KeyboardInterrupt  # the user's Ctrl-C (or a kill) while the new page is written

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_text_atomically(page, "the new report, half written", "the model report")
    assert page.read_text() == "the old report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_a_path_under_a_file_is_a_message_naming_it(tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    with pytest.raises(DataError, match="notes.txt' is a file, where a folder is needed"):
        write_text_atomically(blocker / "profile.html", "page", "the profile page")
    assert blocker.read_text() == "x"
