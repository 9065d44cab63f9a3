"""The fitted predictor: preprocessing plus a weighted ensemble of refitted models.

The ensemble may have two layers: second-layer members take the preprocessed features plus the
predictions of the first-layer stack inputs (:mod:`mlwright.automl._stack`); each input is
predicted once per batch, whether or not it is also a weighted member.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlwright.automl._preprocess import Preprocessor
from mlwright.automl._stack import stack_columns
from mlwright.automl.families import family

__all__ = ["Member", "Predictor"]

#: Batches at least this large are predicted with all threads; small ones stay single-threaded
#: because thread start-up would dominate.
_PARALLEL_ROWS = 4000


@dataclass
class Member:
    """One ensemble member: a family's model(s) and its weight.

    ``models`` holds one model refitted on all the data (``refitted``), or, when there was no
    time to refit, cross-validation fold models whose predictions are averaged.
    """

    name: str
    family: str
    models: list[Any]
    weight: float
    params: dict[str, Any]
    refitted: bool = True
    #: 2 when the member takes the stack features (the first layer's predictions) too.
    layer: int = 1

    @property
    def served_as(self) -> str:
        """How the member serves, as the leaderboard and progress events say it."""
        if self.refitted:
            return "refitted on all rows"
        return f"average of {len(self.models)} fold model(s)"


class Predictor:
    """Picklable fitted model: ``predict``, ``predict_proba`` (classification), ``classes_``.

    Parameters
    ----------
    preprocessor
        The fitted :class:`~mlwright.automl._preprocess.Preprocessor`.
    task
        ``"binary"``, ``"multiclass"`` or ``"regression"``.
    classes
        Class labels in probability-column order (classification), else ``None``.
    members
        The ensemble members with their weights.
    n_jobs
        Threads for large batches.
    stack_inputs
        The first-layer members whose predictions second-layer members take, in the order of
        their stack features (members with weight 0 serve only as inputs).
    """

    def __init__(
        self,
        preprocessor: Preprocessor,
        task: str,
        classes: list[Any] | None,
        members: list[Member],
        n_jobs: int = 2,
        stack_inputs: list[Member] | None = None,
    ) -> None:
        self.preprocessor = preprocessor
        self.task = task
        self.classes_ = list(classes) if classes is not None else None
        self.members = members
        self.n_jobs = n_jobs
        self.stack_inputs = list(stack_inputs or [])

    @property
    def feature_names(self) -> list[str]:
        """The input columns the predictor uses."""
        return list(self.preprocessor.feature_names_)

    @property
    def dropped_columns(self) -> list[dict[str, str]]:
        """Columns dropped at training, each with the reason."""
        return list(self.preprocessor.dropped_columns_)

    def _frame(self, X: Any) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            return X
        if isinstance(X, dict):
            return pd.DataFrame([X])
        return pd.DataFrame(X)

    def _member_output(self, member: Member, matrix: np.ndarray, n_threads: int) -> np.ndarray:
        """A member's prediction: its one model, or the mean of its fold models."""
        module = family(member.family)
        output = None
        for model in member.models:
            part = module.predict(model, matrix, task=self.task, n_threads=n_threads)
            output = part if output is None else output + part
        return output / len(member.models)

    def blend_matrix(self, matrix: np.ndarray, n_threads: int | None = None) -> np.ndarray:
        """The weighted ensemble's output (probabilities or values) for a preprocessed matrix."""
        if n_threads is None:
            n_threads = self.n_jobs if len(matrix) >= _PARALLEL_ROWS else 1
        done: dict[int, np.ndarray] = {}
        members = self.members
        stacked = None
        # Pickles from before stacking have neither attribute.
        if any(getattr(member, "layer", 1) == 2 for member in members):
            for member in getattr(self, "stack_inputs", []):
                done[id(member)] = self._member_output(member, matrix, n_threads)
            inputs = [done[id(member)] for member in self.stack_inputs]
            stacked = np.hstack([matrix, stack_columns(inputs, self.task)])
        total = None
        for member in members:
            output = done.get(id(member))
            if output is None:
                design = stacked if getattr(member, "layer", 1) == 2 else matrix
                output = self._member_output(member, design, n_threads)
            output = output * member.weight
            total = output if total is None else total + output
        return total

    def _blend(self, X: Any) -> np.ndarray:
        return self.blend_matrix(self.preprocessor.transform(self._frame(X)))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, one column per label of ``classes_``."""
        if self.task == "regression":
            raise AttributeError("predict_proba is only available for classification")
        proba = np.clip(self._blend(X), 0.0, None)
        sums = proba.sum(axis=1, keepdims=True)
        return proba / np.where(sums > 0, sums, 1.0)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (classification) or values (regression)."""
        if self.task == "regression":
            return np.asarray(self._blend(X), dtype=float)
        labels = np.asarray(self.classes_, dtype=object)
        predicted = labels[self.predict_proba(X).argmax(axis=1)]
        try:
            return predicted.astype(np.asarray(self.classes_).dtype)
        except (TypeError, ValueError):
            return predicted
