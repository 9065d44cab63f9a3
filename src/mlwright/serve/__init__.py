"""Serving: REST and gRPC on the Open Inference Protocol, validated, logged and observable.

``mlwright serve MODEL`` runs :func:`run_server`; tests and embedders build the app with
:func:`create_app` from a :class:`ModelRegistry` of :class:`ServedModel` objects.
"""

from __future__ import annotations

from mlwright.serve._app import ServerState, create_app, get_serve_settings
from mlwright.serve._log import (
    LogStore,
    PredictionLog,
    open_log_store,
    read_predictions,
    register_log_store,
)
from mlwright.serve._registry import ModelRegistry, ServedModel, Watcher, load_served_model
from mlwright.serve._server import build_registry, run_server
from mlwright.serve._settings import ServeSettings

__all__ = [
    "LogStore",
    "ModelRegistry",
    "PredictionLog",
    "ServeSettings",
    "ServedModel",
    "ServerState",
    "Watcher",
    "build_registry",
    "create_app",
    "get_serve_settings",
    "load_served_model",
    "open_log_store",
    "read_predictions",
    "register_log_store",
    "run_server",
]
