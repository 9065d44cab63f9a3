"""Fixtures for the registry tests: an isolated store and small real model artifacts.

Most tests need *a* real artifact, not a well-tuned one: :func:`quick_artifact` fits a
scikit-learn pipeline on the bundled credit-g data in well under a second and saves it through
:class:`mlwright.model.Model`, so it is a genuine artifact (MANIFEST, schema, lineage). The
end-to-end tests train with ``mlwright train`` itself.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from mlwright.config import get_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
CREDIT_TRAIN = REPO_ROOT / "examples" / "credit-g" / "train.csv"
CREDIT_TEST = REPO_ROOT / "examples" / "credit-g" / "test.csv"


@pytest.fixture(scope="session")
def template_database(tmp_path_factory) -> Path:
    """An empty, migrated MLflow SQLite database, made once per session.

    Creating an MLflow database runs its schema migrations (seconds); each test copies this
    one instead.
    """
    home = tmp_path_factory.mktemp("template-home")
    saved = os.environ.get("MLWRIGHT_HOME")
    os.environ["MLWRIGHT_HOME"] = str(home)
    try:
        from mlwright.registry import open_store

        open_store(default_tracking_uri_for(home))
    finally:
        if saved is None:
            os.environ.pop("MLWRIGHT_HOME", None)
        else:
            os.environ["MLWRIGHT_HOME"] = saved
    return home / "mlflow.db"


def default_tracking_uri_for(home: Path) -> str:
    return f"sqlite:///{(home / 'mlflow.db').as_posix()}"


def copy_database(template: Path, destination: Path) -> None:
    """Copy an SQLite database consistently (WAL content included) and keep WAL mode."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with (
        contextlib.closing(sqlite3.connect(template)) as source,
        contextlib.closing(sqlite3.connect(destination)) as target,
    ):
        source.backup(target)
        target.execute("PRAGMA journal_mode=WAL")


@pytest.fixture
def store_home(tmp_path, monkeypatch, template_database) -> Path:
    """A project folder with an empty default SQLite store; no tracking URI set; cwd tmp_path."""
    home = tmp_path / "home"
    copy_database(template_database, home / "mlflow.db")
    monkeypatch.setenv("MLWRIGHT_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLWRIGHT_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def artifact_template(tmp_path_factory) -> Path:
    """A real mlwright artifact (credit-g, logistic regression) with the MLflow pyfunc flavor,
    made once per session."""
    from mlwright.registry import add_pyfunc_flavor

    path = quick_artifact(tmp_path_factory.mktemp("artifact") / "credit-model")
    add_pyfunc_flavor(path)
    return path


@pytest.fixture
def artifact(tmp_path, artifact_template) -> Path:
    """A private copy of :func:`artifact_template` the test may modify."""
    destination = tmp_path / "credit-model"
    shutil.copytree(artifact_template, destination)
    return destination


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
        # The scikit-learn pipeline itself: it pickles by reference to scikit-learn only, so
        # a server in another process can load it.
        pipeline,
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
