"""docs/reliability.md names a test for each guarantee: every test it names exists, and the
README links the page."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "reliability.md"

# `tests/e2e/test_faults.py::test_x`, `test_bad_inputs_cli.py::test_x`, or `::test_x` (the
# file of the reference before it).
REFERENCE = re.compile(r"`((?:tests/[\w/]+/)?test_\w+\.py)?::(test_\w+)`")


def _test_file(name: str) -> Path:
    if name.startswith("tests/"):
        return REPO / name
    matches = list((REPO / "tests").rglob(name))
    assert len(matches) == 1, f"{name}: {matches}"
    return matches[0]


def test_every_test_the_page_names_exists():
    text = PAGE.read_text()
    references = REFERENCE.findall(text)
    assert len(references) >= 15
    current = None
    for file_name, test_name in references:
        current = _test_file(file_name) if file_name else current
        assert current is not None, file_name
        assert current.is_file(), file_name
        assert re.search(rf"^def {test_name}\(", current.read_text(), re.MULTILINE), (
            f"{current.relative_to(REPO)} has no {test_name}"
        )


def test_the_page_is_linked_and_its_links_resolve():
    assert "(docs/reliability.md)" in (REPO / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#:]+)\)", PAGE.read_text()):
        assert (PAGE.parent / target).exists(), target
