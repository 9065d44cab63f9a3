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

from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel

from mlwright.model import load
from mlwright.registry._flavor import ARTIFACT_KEY, add_pyfunc_flavor, has_pyfunc_flavor

__all__ = ["MlwrightPythonModel", "add_pyfunc_flavor", "has_pyfunc_flavor", "prediction_frame"]


class MlwrightPythonModel(PythonModel):
    """Serve an mlwright artifact through MLflow's ``python_function`` interface.

    ``predict`` takes a pandas DataFrame (or anything MLflow's scoring server decodes into one)
    and returns a DataFrame with a ``prediction`` column and, for classification, one
    ``proba_<class>`` column per class label: the same columns as ``mlwright predict`` writes.
    """

    def load_context(self, context: Any) -> None:
        """Load the artifact MLflow downloaded, verifying its MANIFEST first."""
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
