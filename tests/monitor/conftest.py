"""Fixtures of the monitoring tests: adult's rows as the shared suite holds them."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def adult(bench_dataset):
    """``(train, test, target)`` frames of adult (read once per session)."""
    from mlwright.data import read

    entry = bench_dataset("adult")
    return read(entry["train"]), read(entry["test"]), entry["target"]


@pytest.fixture(scope="session")
def adult_reference(adult):
    """The drift reference of adult's training rows (features only)."""
    from mlwright.monitor import build_reference
    from mlwright.monitor._reference import infer_kinds

    train, _, target = adult
    features = train.drop(columns=[target])
    return build_reference(features, infer_kinds(features))
