"""The stages import only downstream: the layer contract in pyproject.toml."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_the_stage_layers_hold(monkeypatch):
    from importlinter import cli as lint

    monkeypatch.chdir(REPO_ROOT)
    # Exit code 0: every contract kept (the report names the offending import chain otherwise).
    assert lint.lint_imports(config_filename="pyproject.toml", no_cache=True, no_logo=True) == 0


def test_the_layers_are_the_documented_ones():
    import tomllib

    contract = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = contract["contracts"][0]["layers"]
    page = (REPO_ROOT / "docs" / "architecture.md").read_text()
    for layer in layers:
        for stage in layer.split("|"):
            assert f"`{stage.strip()}`" in page, stage


def test_the_public_api_is_the_documented_one():
    import re

    import mlwright

    page = (REPO_ROOT / "docs" / "architecture.md").read_text()
    section = page[page.index("## The public API") :]
    documented = set(re.findall(r"^\| `mlwright\.(\w+)` \|", section, re.MULTILINE))
    assert documented == set(mlwright.__all__)
