"""The fitted predictor: preprocessing plus a weighted ensemble of refitted models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlwright.automl._preprocess import Preprocessor
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
    """

    def __init__(
        self,
        preprocessor: Preprocessor,
        task: str,
        classes: list[Any] | None,
        members: list[Member],
        n_jobs: int = 2,
    ) -> None:
        self.preprocessor = preprocessor
        self.task = task
        self.classes_ = list(classes) if classes is not None else None
        self.members = members
        self.n_jobs = n_jobs

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

    def _blend(self, X: Any) -> np.ndarray:
        frame = self._frame(X)
        matrix = self.preprocessor.transform(frame)
        n_threads = self.n_jobs if len(matrix) >= _PARALLEL_ROWS else 1
        total = None
        for member in self.members:
            module = family(member.family)
            output = None
            for model in member.models:
                part = module.predict(model, matrix, task=self.task, n_threads=n_threads)
                output = part if output is None else output + part
            output = output * (member.weight / len(member.models))
            total = output if total is None else total + output
        return total

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
