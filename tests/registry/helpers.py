"""Shared helpers of the registry tests."""

from __future__ import annotations

from pathlib import Path

from mlwright.model import load
from mlwright.registry import start_training_run

from .conftest import CREDIT_TRAIN


def logged_run(artifact: Path, *, store=None, data: Path = CREDIT_TRAIN):
    """A finished training run that logged ``artifact`` (as `mlwright train` does)."""
    model = load(artifact)
    run = start_training_run(data=str(data), settings={"target": "class"}, store=store)
    with run:
        run.log_model(model, data=str(data))
    return run


def registered(artifact: Path, name: str, *, store=None):
    """Log ``artifact`` in a new run and register it as a version of ``name``."""
    run = logged_run(artifact, store=store)
    return run.register(name)
