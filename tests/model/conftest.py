"""Fixtures for the model tests."""

from __future__ import annotations

import pytest
from model_helpers import CREDIT_TEST, CREDIT_TRAIN, build_model, fit_pipeline


@pytest.fixture(scope="session")
def credit_paths():
    return CREDIT_TRAIN, CREDIT_TEST


@pytest.fixture(scope="session")
def credit_frames():
    import pandas as pd

    return pd.read_csv(CREDIT_TRAIN), pd.read_csv(CREDIT_TEST)


@pytest.fixture(scope="session")
def credit_pipeline(credit_frames):
    train, _ = credit_frames
    return fit_pipeline(train, "class")


@pytest.fixture(scope="session")
def credit_read():
    from mlwright.data import read

    return read(CREDIT_TRAIN), read(CREDIT_TEST)


@pytest.fixture(scope="session")
def credit_model(credit_read):
    train, _ = credit_read
    return build_model(train, "class")
