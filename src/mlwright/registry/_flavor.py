"""The files that make an mlwright artifact an MLflow pyfunc model (written without MLflow).

See :mod:`mlwright.registry._pyfunc` for the model class MLflow loads. This module does not
import MLflow: it runs at the end of every tracked training, inside its time budget.
"""

from __future__ import annotations

import datetime as dt
import platform
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from mlwright import __version__
from mlwright.model._artifact import add_files

__all__ = ["ARTIFACT_KEY", "CODE_FILE", "MLMODEL_FILE", "add_pyfunc_flavor", "has_pyfunc_flavor"]

MLMODEL_FILE = "MLmodel"
CODE_FILE = "mlflow_model.py"
ARTIFACT_KEY = "mlwright_model"

_CODE = '''"""MLflow "model from code" entry point, written by mlwright (see mlwright.registry)."""

from mlflow.models import set_model

from mlwright.registry._pyfunc import MlwrightPythonModel

set_model(MlwrightPythonModel())
'''


def has_pyfunc_flavor(directory: str | Path) -> bool:
    """Whether the artifact at ``directory`` already carries an ``MLmodel`` file."""
    return (Path(directory) / MLMODEL_FILE).is_file()


def add_pyfunc_flavor(directory: str | Path) -> None:
    """Make the artifact at ``directory`` an MLflow pyfunc model (in place, MANIFEST updated).

    Does nothing when the artifact already has an ``MLmodel`` file.

    The files are the ones ``mlflow.pyfunc.save_model(python_model=<code file>)`` writes, with
    the artifact mapped to the model's root; they are written directly because this runs at
    the end of a time-budgeted training, and MLflow's writer costs seconds of imports. The
    round trip through ``mlflow.pyfunc.load_model`` and ``mlflow models serve`` is tested.

    Parameters
    ----------
    directory
        A complete mlwright artifact (it is verified before anything is added).
    """
    root = Path(directory)
    if has_pyfunc_flavor(root):
        return
    add_files(root, pyfunc_files())


def pyfunc_files() -> dict[str, bytes]:
    """The files that make an mlwright artifact an MLflow pyfunc model, by name."""

    def version(distribution: str, default: str) -> str:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            return default

    mlflow_version = version("mlflow", "3")
    python_version = platform.python_version()
    requirements = [f"mlflow=={mlflow_version}", f"mlwright=={__version__}"]
    description = {
        "flavors": {
            "python_function": {
                "artifacts": {ARTIFACT_KEY: {"path": "."}},
                "cloudpickle_version": version("cloudpickle", "3"),
                "code": None,
                "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                "loader_module": "mlflow.pyfunc.loaders.code_model",
                "model_code_path": CODE_FILE,
                "python_version": python_version,
                "streamable": False,
            }
        },
        "mlflow_version": mlflow_version,
        "model_uuid": uuid.uuid4().hex,
        "utc_time_created": str(dt.datetime.now(dt.UTC).replace(tzinfo=None)),
    }
    python_env = {
        "python": python_version,
        "build_dependencies": ["pip", "setuptools", "wheel"],
        "dependencies": ["-r requirements.txt"],
    }
    conda = {
        "channels": ["conda-forge"],
        "dependencies": [f"python={python_version}", "pip", {"pip": requirements}],
        "name": "mlflow-env",
    }

    def dump(document: dict[str, Any]) -> bytes:
        return yaml.safe_dump(document, default_flow_style=False, sort_keys=False).encode()

    return {
        MLMODEL_FILE: dump(description),
        CODE_FILE: _CODE.encode("utf-8"),
        "requirements.txt": ("\n".join(requirements) + "\n").encode("utf-8"),
        "python_env.yaml": dump(python_env),
        "conda.yaml": dump(conda),
    }
