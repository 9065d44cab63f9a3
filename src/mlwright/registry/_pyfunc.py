"""The MLflow pyfunc flavor of an mlwright model.

An mlwright artifact directory is made a valid MLflow model in place: :func:`add_pyfunc_flavor`
adds an ``MLmodel`` file (flavor ``python_function``, MLflow's "model from code" loader), the
few lines of code that loader runs, and the environment files, and lists them in the artifact's
MANIFEST. The ``MLmodel`` maps the artifact ``mlwright_model`` to the model's own root (``.``),
so MLflow hands :class:`MlwrightPythonModel` the directory and it loads it with
:func:`mlwright.model.load`, which verifies every digest first.

So ``mlflow.pyfunc.load_model("models:/NAME@champion")`` predicts and ``mlflow models serve -m
models:/NAME@champion --env-manager local`` serves, with no second copy of the model.

This module imports MLflow at the top: it is only imported by MLflow's loader and by code that
is about to use MLflow anyway, never on mlwright's own prediction path.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from mlwright.registry._store import quiet_mlflow

__all__ = ["MlwrightPythonModel", "add_pyfunc_flavor", "has_pyfunc_flavor", "prediction_frame"]

MLMODEL_FILE = "MLmodel"
CODE_FILE = "mlflow_model.py"
ARTIFACT_KEY = "mlwright_model"
# Files MLflow's writer produces besides MLmodel and the code file.
_ENVIRONMENT_FILES = ("requirements.txt", "python_env.yaml", "conda.yaml")

_CODE = '''"""MLflow "model from code" entry point, written by mlwright (see mlwright.registry)."""

from mlflow.models import set_model

from mlwright.registry._pyfunc import MlwrightPythonModel

set_model(MlwrightPythonModel())
'''


class MlwrightPythonModel(PythonModel):
    """Serve an mlwright artifact through MLflow's ``python_function`` interface.

    ``predict`` takes a pandas DataFrame (or anything MLflow's scoring server decodes into one)
    and returns a DataFrame with a ``prediction`` column and, for classification, one
    ``proba_<class>`` column per class label: the same columns as ``mlwright predict`` writes.
    """

    def load_context(self, context: Any) -> None:
        """Load the artifact MLflow downloaded, verifying its MANIFEST first."""
        from mlwright.model import load

        self.model = load(context.artifacts[ARTIFACT_KEY])

    # MLflow reads this type hint: a DataFrame hint makes it pass the decoded input through
    # unchanged (no hint, or ``Any``, earns a warning on every load). mlwright validates the
    # input against the training schema itself.
    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Predict every row of ``model_input``; see the class docstring for the columns."""
        return prediction_frame(self.model, model_input)


def prediction_frame(model: Any, data: Any) -> Any:
    """The ``prediction`` column and, for classification, ``proba_<class>`` columns.

    Parameters
    ----------
    model
        A loaded :class:`mlwright.model.Model`.
    data
        A pandas DataFrame, a dict (one row) or a list of dicts.

    Returns
    -------
    pandas.DataFrame
        One row per input row, in order.
    """
    import pandas as pd

    if isinstance(data, dict):
        data = pd.DataFrame([data])
    elif isinstance(data, list):
        data = pd.DataFrame(data)
    predictions = model.predict(data)
    index = data.index if isinstance(data, pd.DataFrame) else None
    frame = pd.DataFrame({"prediction": list(predictions)}, index=index)
    if model.task != "regression":
        probabilities = model.predict_proba(data)
        for label in probabilities.columns:
            frame[f"proba_{label}"] = probabilities[label].to_numpy()
    return frame


def has_pyfunc_flavor(directory: str | Path) -> bool:
    """Whether the artifact at ``directory`` already carries an ``MLmodel`` file."""
    return (Path(directory) / MLMODEL_FILE).is_file()


def add_pyfunc_flavor(directory: str | Path) -> None:
    """Make the artifact at ``directory`` an MLflow pyfunc model (in place, MANIFEST updated).

    Does nothing when the artifact already has an ``MLmodel`` file.

    Parameters
    ----------
    directory
        A complete mlwright artifact (it is verified before anything is added).
    """
    from mlwright import __version__
    from mlwright.model._artifact import add_files

    root = Path(directory)
    if has_pyfunc_flavor(root):
        return
    with tempfile.TemporaryDirectory(prefix="mlwright-pyfunc-") as scratch:
        code = Path(scratch) / CODE_FILE
        code.write_text(_CODE, encoding="utf-8")
        written = Path(scratch) / "model"
        with quiet_mlflow():
            # MLflow writes MLmodel, the environment files and a copy of the code file; the
            # requirement is given explicitly so that MLflow does not spend seconds inferring it.
            mlflow.pyfunc.save_model(
                path=str(written),
                python_model=str(code),
                pip_requirements=[f"mlwright=={__version__}"],
            )
            description = mlflow.models.Model.load(str(written / MLMODEL_FILE))
        flavor = description.flavors["python_function"]
        # MLflow records the absolute path of the code file it copied; the loader only uses
        # the file name, and an absolute scratch path would be misleading in the MLmodel.
        flavor["model_code_path"] = CODE_FILE
        # The model's own root is the artifact: MLflow passes ``<model root>/.`` to
        # load_context, so the artifact is not copied into an ``artifacts/`` folder.
        flavor["artifacts"] = {ARTIFACT_KEY: {"path": "."}}
        description.save(str(written / MLMODEL_FILE))
        files = {MLMODEL_FILE: (written / MLMODEL_FILE).read_bytes()}
        files[CODE_FILE] = _CODE.encode("utf-8")
        for name in _ENVIRONMENT_FILES:
            if (written / name).is_file():
                files[name] = (written / name).read_bytes()
    add_files(root, files)
