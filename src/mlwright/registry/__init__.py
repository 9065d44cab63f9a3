"""Experiment tracking, model registry and lineage, on MLflow.

mlwright uses MLflow as its tracking store and model registry: by default an embedded SQLite
store in the project folder (``.mlwright/mlflow.db``, artifacts in ``.mlwright/artifacts``),
or any MLflow server named by ``--tracking-uri`` / ``MLFLOW_TRACKING_URI``.

- every ``mlwright train`` is an MLflow run (:func:`start_training_run`);
- registered models have versions and the aliases ``champion`` and ``challenger``
  (:func:`register_version`, :func:`promote`, :func:`rollback`, :func:`delete`);
- one way to name a model everywhere: a path, ``runs:/<id>/model``, ``models:/NAME/VERSION``
  or ``models:/NAME@alias`` (:func:`resolve_reference`; importing this package teaches
  :func:`mlwright.model.resolve_reference` and :func:`mlwright.load` the registry forms);
- a registered model is an MLflow pyfunc model (:class:`MlwrightPythonModel`);
- :func:`reproduce` re-runs a recorded training and reports the metric difference.

Importing this package does not import MLflow; the functions do, when called.
"""

from __future__ import annotations

from typing import Any

from mlwright.model._artifact import register_reference_scheme
from mlwright.registry._flavor import add_pyfunc_flavor
from mlwright.registry._references import cache_root
from mlwright.registry._references import resolve as resolve_reference
from mlwright.registry._registry import (
    CHALLENGER,
    CHAMPION,
    ModelInfo,
    VersionInfo,
    check_model_name,
    delete,
    get_model,
    get_version,
    list_models,
    promote,
    register_version,
    rollback,
)
from mlwright.registry._reproduce import ReproduceResult, reproduce
from mlwright.registry._store import (
    Store,
    default_tracking_uri,
    open_store,
    resolve_tracking_uri,
)
from mlwright.registry._tracking import TrainingRun, log_evaluation, start_training_run

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "MlwrightPythonModel",
    "ModelInfo",
    "ReproduceResult",
    "Store",
    "TrainingRun",
    "VersionInfo",
    "add_pyfunc_flavor",
    "cache_root",
    "check_model_name",
    "default_tracking_uri",
    "delete",
    "get_model",
    "get_version",
    "list_models",
    "log_evaluation",
    "open_store",
    "promote",
    "register_version",
    "reproduce",
    "resolve_reference",
    "resolve_tracking_uri",
    "rollback",
    "start_training_run",
]


def __getattr__(name: str) -> Any:
    if name == "MlwrightPythonModel":
        # deferred: the pyfunc model subclasses an MLflow class, so it imports MLflow (~0.9 s)
        from mlwright.registry import _pyfunc

        return _pyfunc.MlwrightPythonModel
    raise AttributeError(f"module 'mlwright.registry' has no attribute {name!r}")


# Teach mlwright.model.resolve_reference (and so mlwright.load, predict, evaluate, serve,
# export) the registry's references.
register_reference_scheme("runs:/", resolve_reference)
register_reference_scheme("models:/", resolve_reference)
