"""Fixtures: real trained credit-g models (see ``_trained.py``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def _helper():
    spec = importlib.util.spec_from_file_location(
        "_eval_trained_loader", Path(__file__).parent / "_trained.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load_helper()


trained = _helper()


@pytest.fixture(scope="session")
def credit_model_path():
    return trained.model_path("lightgbm")


@pytest.fixture(scope="session")
def mixed_model_path():
    return trained.model_path("mixed")


@pytest.fixture(scope="session")
def regression_model_path():
    return trained.model_path("regression")


@pytest.fixture(scope="session")
def credit_test():
    import pandas as pd

    return pd.read_csv(trained.CREDIT_TEST)
