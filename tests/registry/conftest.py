"""Fixtures for the registry tests: an isolated store and small real model artifacts.

Most tests need *a* real artifact, not a well-tuned one: :func:`quick_artifact` fits a
scikit-learn pipeline on the bundled credit-g data in well under a second and saves it through
:class:`mlwright.model.Model`, so it is a genuine artifact (MANIFEST, schema, lineage). The
end-to-end tests train with ``mlwright train`` itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlwright.config import get_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
CREDIT_TRAIN = REPO_ROOT / "examples" / "credit-g" / "train.csv"
CREDIT_TEST = REPO_ROOT / "examples" / "credit-g" / "test.csv"


@pytest.fixture
def store_home(tmp_path, monkeypatch) -> Path:
    """An empty project folder for the default SQLite store, and no tracking URI set."""
    home = tmp_path / "home"
    monkeypatch.setenv("MLWRIGHT_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLWRIGHT_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


class _Predictor:
    """A fitted scikit-learn pipeline with the predictor interface mlwright's Model expects."""

    def __init__(self, pipeline, feature_names, classes):
        self.pipeline = pipeline
        self.feature_names = feature_names
        self.classes_ = classes
        self.dropped_columns = []

    def predict(self, features):
        return self.pipeline.predict(features[self.feature_names])

    def predict_proba(self, features):
        return self.pipeline.predict_proba(features[self.feature_names])


def quick_artifact(path: Path, *, seed: int = 0, data: Path = CREDIT_TRAIN) -> Path:
    """Fit a small logistic regression on credit-g and save it as an mlwright artifact."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from mlwright.data import Schema, fingerprint, read
    from mlwright.model import Model

    frame = read(data)
    schema = Schema.infer(frame, target="class")
    features = [name for name in frame.columns if name != "class"]
    numeric = [name for name in features if frame[name].dtype.kind in "if"]
    categorical = [name for name in features if name not in numeric]
    pipeline = make_pipeline(
        ColumnTransformer(
            [
                ("numbers", StandardScaler(), numeric),
                ("categories", OneHotEncoder(handle_unknown="ignore"), categorical),
            ]
        ),
        LogisticRegression(max_iter=500, C=0.5 + seed),
    )
    pipeline.fit(frame[features], frame["class"].astype(str))
    classes = [str(label) for label in pipeline.classes_]
    info = {
        "format_version": 1,
        "task": "binary",
        "target": "class",
        "class_labels": classes,
        "feature_names": features,
        "input_dtypes": {name: str(frame[name].dtype) for name in features},
    }
    model = Model(
        _Predictor(pipeline, features, classes),
        schema,
        info=info,
        metrics={
            "metric": "roc_auc",
            "greater_is_better": True,
            "validation_score": 0.75 + seed / 100,
            "validation_std": 0.02,
            "fold_scores": [0.74, 0.76, 0.75],
            "n_folds": 3,
            "leaderboard": [
                {
                    "model": "logistic",
                    "family": "linear",
                    "params": {"C": 0.5},
                    "score": 0.75,
                    "std": 0.02,
                    "fit_seconds": 0.1,
                },
            ],
        },
        lineage={
            "data": {
                "source": str(data),
                "fingerprint": fingerprint(frame),
                "n_rows": len(frame),
                "n_columns": frame.shape[1],
                "target": "class",
                "task": "binary",
            },
            "settings": {"target": "class", "seed": seed, "max_trials": 1, "time_limit": None},
            "seed": seed,
            "timings": {"total": 0.5},
        },
        findings=[{"kind": "class_imbalance", "severity": "info", "columns": ["class"]}],
    )
    model.save(path)
    return path
