"""Fixtures for the model artifact tests: a tiny real scikit-learn pipeline as the predictor."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CREDIT_TRAIN = EXAMPLES / "credit-g" / "train.csv"
CREDIT_TEST = EXAMPLES / "credit-g" / "test.csv"


def fit_pipeline(frame: pd.DataFrame, target: str):
    """A small real predictor honouring the search's predictor protocol."""
    features = [name for name in frame.columns if name != target]
    numeric = [name for name in features if pd.api.types.is_numeric_dtype(frame[name])]
    categorical = [name for name in features if name not in numeric]
    pipeline = make_pipeline(
        ColumnTransformer(
            [
                ("numbers", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
                ("categories", OneHotEncoder(handle_unknown="ignore"), categorical),
            ]
        ),
        LogisticRegression(max_iter=500),
    )
    pipeline.fit(frame[features], frame[target])
    pipeline.feature_names = features
    pipeline.dropped_columns = []
    return pipeline


@pytest.fixture(scope="session")
def credit_paths():
    return CREDIT_TRAIN, CREDIT_TEST


@pytest.fixture(scope="session")
def credit_frames():
    return pd.read_csv(CREDIT_TRAIN), pd.read_csv(CREDIT_TEST)


@pytest.fixture(scope="session")
def credit_pipeline(credit_frames):
    train, _ = credit_frames
    return fit_pipeline(train, "class")
