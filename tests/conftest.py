"""Shared fixtures: the benchmark suite's location, temporary working folders."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = REPO_ROOT / "examples"


def bench_data_dir() -> Path:
    """Where the shared benchmark datasets live (``MLWRIGHT_BENCH_DATA`` overrides)."""
    configured = os.environ.get("MLWRIGHT_BENCH_DATA")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "bench" / "data"


def _require_bench_suite() -> Path:
    directory = bench_data_dir()
    if (directory / "suite.json").is_file():
        return directory
    reason = (
        f"the shared benchmark suite is not at {directory} (it sits beside the repository in "
        "the project's workspace and in CI; set MLWRIGHT_BENCH_DATA to point elsewhere)"
    )
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the suite tests, but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def bench_suite() -> list[dict]:
    """The suite's datasets: name, target, task, metric, and ``train``/``test`` paths."""
    directory = _require_bench_suite()
    entries = json.loads((directory / "suite.json").read_text())
    for entry in entries:
        entry["train"] = directory / entry["name"] / "train.csv"
        entry["test"] = directory / entry["name"] / "test.csv"
    return entries


@pytest.fixture(scope="session")
def bench_dataset(bench_suite):
    """Look up one dataset of the suite by name."""
    by_name = {entry["name"]: entry for entry in bench_suite}
    return by_name.__getitem__


@pytest.fixture
def in_tmp(tmp_path, monkeypatch) -> Path:
    """Run the test inside an empty temporary working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLWRIGHT_HOME", str(tmp_path / ".mlwright"))
    return tmp_path


@pytest.fixture
def adult_like_csv(tmp_path) -> Path:
    """A small CSV shaped like adult's markers: ``workclass`` has ``?`` as a category,
    ``hours`` has ``?`` among its numbers, and the label is ``+``/``-``."""
    import numpy as np

    rng = np.random.default_rng(11)
    lines = ["hours,workclass,label"]
    for index in range(240):
        workclass = ["Private", "?", "State-gov"][index % 3]
        hours = rng.normal(40, 8)
        score = (hours - 40) / 8 + (1.2 if workclass == "?" else -0.4)
        label = "+" if score + rng.normal(scale=0.3) > 0 else "-"
        shown = "?" if index % 30 == 4 else f"{hours:.1f}"
        lines.append(f"{shown},{workclass},{label}")
    path = tmp_path / "adult-like.csv"
    path.write_text("\n".join(lines) + "\n")
    return path
