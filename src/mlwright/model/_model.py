"""The trained model: predictor plus everything needed to use and trust it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlwright.data import Schema
from mlwright.data._markers import schema_rule
from mlwright.errors import DataError, ModelError
from mlwright.model import _artifact


class Model:
    """A trained mlwright model: predicts, validates its input, and knows its history.

    Obtain one from :func:`mlwright.train` or :func:`mlwright.load`; you do not construct it
    directly.

    Parameters
    ----------
    predictor
        The fitted predictor (``predict``, and ``predict_proba`` for classification).
    schema
        The training data's :class:`mlwright.data.Schema`, enforced on prediction input.
    info
        ``model.json``: task, target, class labels, input columns and their training dtypes.
    metrics
        Validation score with fold spread and the leaderboard.
    lineage
        Data fingerprint, versions, settings, seed, time taken.
    findings
        The data-quality findings of the training data (as dicts).
    path
        The artifact directory it was loaded from or saved to, if any.

    Attributes
    ----------
    schema, metrics, lineage, findings, path
        As above.
    task : str
        ``"binary"``, ``"multiclass"`` or ``"regression"``.
    target : str
        The name of the column the model predicts.
    classes : list or None
        Class labels exactly as in the training data (classification only).
    feature_names : list of str
        The input columns the predictor uses.
    """

    def __init__(
        self,
        predictor: Any,
        schema: Any,
        *,
        info: dict[str, Any],
        metrics: dict[str, Any] | None = None,
        lineage: dict[str, Any] | None = None,
        findings: list[dict[str, Any]] | None = None,
        path: Path | None = None,
    ) -> None:
        self.predictor = predictor
        self.schema = schema
        self.info = info
        self.metrics = metrics or {}
        self.lineage = lineage or {}
        self.findings = findings or []
        self.path = path
        # Files added to the artifact on save (e.g. the drift reference built at training).
        self.extra_files: dict[str, bytes] = {}
        self._feature_names = [str(name) for name in info["feature_names"]]
        self._numeric_features = [
            name
            for name, dtype in (info.get("input_dtypes") or {}).items()
            if _is_numeric_dtype_name(dtype) and name in set(self._feature_names)
        ]
        # Columns whose values validation type-checks: numbers and dates.
        self._checked_columns = [
            (column.name, "datetime" if column.semantic_type == "datetime" else "number")
            for column in schema.columns
            if column.name != info["target"]
            and (
                column.semantic_type == "datetime"
                or (
                    column.dtype in ("integer", "float")
                    and column.semantic_type not in ("text", "identifier", "constant")
                )
            )
        ]

    # -- description -------------------------------------------------------------------------
    @property
    def task(self) -> str:
        return self.info["task"]

    @property
    def target(self) -> str:
        return self.info["target"]

    @property
    def classes(self) -> list[Any] | None:
        return self.info.get("class_labels")

    @property
    def feature_names(self) -> list[str]:
        return list(self._feature_names)

    @property
    def reading_rule(self) -> Any:
        """The ``na_values`` rule that reads new files the way the training data was read.

        Pass it to :func:`mlwright.data.read` (``read(path, na_values=model.reading_rule)``):
        the rule given at training applies again, and markers that were values of a text
        column at training (``?`` as a category) stay values even in a one-row file.
        """
        return schema_rule(self.schema)

    def __repr__(self) -> str:
        score = self.metrics.get("validation_score")
        metric = self.metrics.get("metric")
        shown = f", {metric}={score:.4g}" if isinstance(score, (int, float)) else ""
        where = f", path='{self.path}'" if self.path else ""
        return f"Model(task={self.task!r}, target={self.target!r}{shown}{where})"

    # -- prediction ----------------------------------------------------------------------------
    def predict(self, data: Any) -> Any:
        """Predict the target for each row.

        Parameters
        ----------
        data
            A pandas DataFrame with the training columns (extra columns and the target are
            ignored), a dict for one row, or a list of dicts.

        Returns
        -------
        numpy.ndarray
            One prediction per row, in input order: class labels as they appeared in the
            training data, or numbers for regression.

        Raises
        ------
        SchemaValidationError
            The input does not match the training schema (each problem names its column).
        """
        features = self._prepare(data)
        if len(features) == 0:
            return np.empty(0, dtype=object if self.classes else float)
        return np.asarray(self.predictor.predict(features))

    def predict_proba(self, data: Any) -> Any:
        """Class probabilities for each row (classification only).

        Parameters
        ----------
        data
            As for :meth:`predict`.

        Returns
        -------
        pandas.DataFrame
            One column per class label (labels exactly as in the training data), one row per
            input row, rows summing to 1, with the input's index when it was a DataFrame.
        """
        if self.task == "regression":
            raise ModelError(
                f"This model predicts a number ('{self.target}', regression), so it has no class "
                "probabilities. Use predict() instead."
            )
        features = self._prepare(data)
        classes = list(self.classes or [])
        if len(features) == 0:
            return pd.DataFrame(columns=classes, dtype=float)
        probabilities = self.predictor.predict_proba(features)
        index = data.index if isinstance(data, pd.DataFrame) else None
        return pd.DataFrame(probabilities, columns=classes, index=index)

    def _prepare(self, data: Any, *, where: str = "the prediction input") -> Any:
        """Validate input against the schema and return the predictor's feature frame."""
        frame = _as_frame(data)
        # One pass over the dtypes (``frame.dtypes`` builds a Series on every access).
        dtypes = dict(zip(frame.columns, frame.dtypes, strict=True))
        if not self._obviously_valid(dtypes):
            self._validate(frame, where)
        columns = self._feature_names
        missing = [name for name in columns if name not in frame.columns]
        if missing:
            # The schema allowed these to be absent (validation passed): they count as missing
            # values, which every predictor handles.
            frame = frame.assign(**dict.fromkeys(missing, float("nan")))
        # Extra columns (the target, ids) stay: predictors pick their ``feature_names`` by name,
        # and selecting a subset copies the frame, which costs more than a single-row prediction.
        features = frame
        converted = {}
        for name in self._numeric_features:
            dtype = dtypes.get(name)
            if dtype is None or not _is_number_dtype(dtype):
                # Text that validation accepted as numbers (e.g. all-missing columns read as
                # strings, JSON numbers sent as strings) becomes a float column, as in training.
                converted[name] = pd.to_numeric(features[name], errors="coerce").astype("float64")
        if converted:
            features = features.assign(**converted)
        return features

    def _validate(self, frame: Any, where: str) -> None:
        """Full schema validation; raises SchemaValidationError naming each bad column."""
        report = self.schema.validate(frame)
        used = set(self._feature_names)
        # Columns the model dropped at training (identifiers, leaks, constants) are not needed
        # to predict, so their absence is not an error.
        errors = [
            problem
            for problem in report.errors
            if problem.kind != "missing_column" or problem.column in used
        ]
        if errors:
            type(report)(problems=errors).raise_for_errors(where)

    def _obviously_valid(self, dtypes: dict[Any, Any]) -> bool:
        """Whether a frame with these column dtypes cannot hold an error-level schema problem.

        Full validation inspects every value with pandas and costs milliseconds per call, which
        dominates single-row prediction. Errors are only missing columns and values of the wrong
        type in numeric and datetime columns; a frame that has every needed column and numeric
        (or datetime) dtypes where the schema wants numbers (or dates) cannot have them. Any
        other frame takes the full validation, which also words the messages.
        """
        for name in self._feature_names:
            if name not in dtypes:
                return False
        for name, kind in self._checked_columns:
            dtype = dtypes.get(name)
            if dtype is None:
                continue
            if kind == "number" and getattr(dtype, "kind", "") not in ("i", "u", "f", "b"):
                return False
            if kind == "datetime" and getattr(dtype, "kind", "") != "M":
                return False
        return True

    # -- persistence ---------------------------------------------------------------------------
    def save(
        self,
        path: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        extra_files: dict[str, bytes] | None = None,
    ) -> Path:
        """Save the model as an artifact directory (atomically).

        Parameters
        ----------
        path
            The directory to create.
        overwrite
            Replace an existing model at ``path``.
        extra_files
            Further files to include (and list in the MANIFEST), by relative path.

        Returns
        -------
        pathlib.Path
            The artifact directory.
        """
        documents = {
            "model.json": self.info,
            "schema.json": self.schema.to_dict(),
            "metrics.json": self.metrics,
            "lineage.json": self.lineage,
            "findings.json": self.findings,
        }
        self.path = _artifact.write_artifact(
            path,
            predictor=self.predictor,
            documents=documents,
            extra_files={**self.extra_files, **(extra_files or {})},
            overwrite=overwrite,
        )
        return self.path


def load(reference: str | os.PathLike[str]) -> Model:
    """Load a model, after verifying every file against its MANIFEST.

    Parameters
    ----------
    reference
        The artifact directory (``runs:/`` and ``models:/`` references once the registry is
        installed).

    Returns
    -------
    Model

    Raises
    ------
    ModelError
        The model does not exist, is incomplete, or was modified after it was saved.
    """
    directory = _artifact.resolve_reference(reference)
    predictor, documents = _artifact.read_artifact(directory)
    try:
        schema = Schema.from_dict(documents["schema.json"])
    except Exception as err:
        raise ModelError(
            f"schema.json of the model at '{directory}' cannot be read ({err}). Train the model "
            "again with this version of mlwright."
        ) from err
    return Model(
        predictor,
        schema,
        info=documents["model.json"],
        metrics=documents["metrics.json"],
        lineage=documents["lineage.json"],
        findings=documents["findings.json"],
        path=directory,
    )


def _as_frame(data: Any) -> Any:
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict):
        return pd.DataFrame([data])
    if isinstance(data, list) and all(isinstance(row, dict) for row in data):
        return pd.DataFrame(data)
    raise DataError(
        f"Cannot predict from a {type(data).__name__}: pass a pandas DataFrame with the training "
        "columns, a dict for one row, or a list of dicts."
    )


def _is_number_dtype(dtype: Any) -> bool:
    """Integer or float (numpy or pandas nullable), not bool: a cheap test on a dtype object."""
    kind = getattr(dtype, "kind", "")
    return kind in ("i", "u", "f")


def _is_numeric_dtype_name(name: str) -> bool:
    lowered = str(name).lower()
    return lowered.startswith(("int", "uint", "float")) or lowered in ("double",)
