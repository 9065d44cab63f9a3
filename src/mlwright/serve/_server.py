"""Run the server: load the models once, then uvicorn (REST) and gRPC until SIGTERM/SIGINT.

On SIGTERM uvicorn stops accepting connections and lets in-flight requests finish; the app's
shutdown then stops gRPC (with a grace period) and flushes the prediction log.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import uvicorn

from mlwright.errors import ConfigError
from mlwright.serve._app import create_app
from mlwright.serve._registry import ModelRegistry, load_served_model
from mlwright.serve._settings import ServeSettings

__all__ = ["build_registry", "parse_model_argument", "run_server"]

_MODELS_ENV = "MLWRIGHT_SERVE_MODELS"


def parse_model_argument(argument: str) -> tuple[str | None, str]:
    """``NAME=REFERENCE`` -> (NAME, REFERENCE); a plain reference -> (None, reference)."""
    name, separator, reference = argument.partition("=")
    if separator and name and "/" not in name and ":" not in name:
        return name, reference
    return None, argument


def build_registry(arguments: Sequence[str]) -> ModelRegistry:
    """Resolve and load every model (once), ready to serve."""
    if not arguments:
        raise ConfigError("Name at least one model to serve: mlwright serve MODEL [MODEL ...].")
    registry = ModelRegistry()
    for argument in arguments:
        name, reference = parse_model_argument(argument)
        registry.add(load_served_model(reference, name=name))
    return registry


def app_from_environment() -> Any:
    """App factory for multi-worker mode: each worker process loads the models itself."""

    arguments = json.loads(os.environ[_MODELS_ENV])
    settings = ServeSettings()
    sys.setswitchinterval(0.001)  # as in run_server
    return create_app(build_registry(arguments), settings, grpc=True)


def run_server(arguments: Sequence[str], settings: ServeSettings) -> None:
    """Serve models until the process is told to stop.

    Parameters
    ----------
    arguments
        Model references, each optionally ``NAME=REFERENCE``.
    settings
        Host, ports, token, batching, log, watch.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Background threads (prediction log, watcher) hand the interpreter back to the request
    # loop after 1 ms instead of 5: a request never waits long behind the log writer.
    sys.setswitchinterval(0.001)
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": 30,
        "http": "httptools",
        "loop": "uvloop",
        "lifespan": "on",
    }
    if settings.workers > 1:
        os.environ[_MODELS_ENV] = json.dumps(list(arguments))
        # Every worker reads the same settings from the environment.
        for key, value in settings.model_dump().items():
            if key == "host":
                os.environ["MLWRIGHT_SERVE_HOST"] = str(value)
            elif key == "port":
                os.environ["MLWRIGHT_SERVE_PORT"] = str(value)
            elif key == "grpc_port":
                os.environ["MLWRIGHT_GRPC_PORT"] = str(value)
            else:
                os.environ[f"MLWRIGHT_{key.upper()}"] = str(value)
        build_registry(arguments)  # fail fast, in the parent, on a bad reference
        uvicorn.run(
            "mlwright.serve._server:app_from_environment",
            factory=True,
            workers=settings.workers,
            **common,
        )
        return
    registry = build_registry(arguments)
    app = create_app(registry, settings, grpc=True)
    names = ", ".join(f"{m.name} (version {m.version})" for m in registry.models())
    grpc_text = f", gRPC on {settings.host}:{settings.grpc_port}" if settings.grpc_port else ""
    logging.getLogger("mlwright.serve").warning(
        "serving %s on http://%s:%s%s", names, settings.host, settings.port, grpc_text
    )
    try:
        uvicorn.run(app, **common)
    except SystemExit as err:
        raise ConfigError(
            f"The server could not start on {settings.host}:{settings.port} (is the port in "
            "use?). Choose another --port."
        ) from err
