"""Helpers for the AutoML tests: real data and its schema."""

from __future__ import annotations

import types
from pathlib import Path

import pandas as pd
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CREDIT_G = REPO_ROOT / "examples" / "credit-g"


def _make_schema(frame: pd.DataFrame, target: str, task: str | None = None):
    """The data's schema: mlwright.data.Schema when available, else the same fields by dtype."""
    try:
        from mlwright.data import Schema
    except ImportError:
        Schema = None
    if Schema is not None:
        return Schema.infer(frame, target=target, task=task)
    columns = [
        types.SimpleNamespace(
            name=name,
            semantic_type="numeric"
            if pd.api.types.is_numeric_dtype(frame[name].dtype)
            else "categorical",
        )
        for name in frame.columns
    ]
    return types.SimpleNamespace(target=target, task=task, class_labels=None, columns=columns)


@pytest.fixture(scope="session")
def credit_g():
    """German credit (binary; numbers and categoricals): train and test frames."""
    return pd.read_csv(CREDIT_G / "train.csv"), pd.read_csv(CREDIT_G / "test.csv")


@pytest.fixture(scope="session")
def make_schema():
    """Build a schema for a frame and target (see ``_make_schema``)."""
    return _make_schema
