"""Helpers for the model tests: a tiny real scikit-learn pipeline as the predictor."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
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


def build_model(frame: pd.DataFrame, target: str, predictor=None):
    """A Model around a real scikit-learn pipeline and the real inferred schema."""
    from mlwright.data import Schema
    from mlwright.model import Model
    from mlwright.model._artifact import FORMAT_VERSION, to_json_safe

    predictor = predictor if predictor is not None else fit_pipeline(frame, target)
    schema = Schema.infer(frame, target=target)
    classes = getattr(predictor, "classes_", None)
    info = {
        "format_version": FORMAT_VERSION,
        "task": schema.task,
        "target": target,
        "class_labels": None if classes is None else to_json_safe(list(classes)),
        "feature_names": list(predictor.feature_names),
        "dropped_columns": [],
        "input_dtypes": {name: str(frame[name].dtype) for name in predictor.feature_names},
    }
    metrics = {"metric": "roc_auc", "validation_score": 0.75, "validation_std": 0.02}
    return Model(predictor, schema, info=info, metrics=metrics, lineage={"seed": 0})
