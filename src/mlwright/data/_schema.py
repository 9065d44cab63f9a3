"""The :class:`Schema`: inferred from data (:mod:`._inference`), saved with a model, and the
contract new data is validated against (:mod:`._validation`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from mlwright.data._columns import (
    SEMANTIC_TYPES,
    TASKS,
    ColumnSchema,
    Problem,
    ValidationReport,
)
from mlwright.data._inference import infer_table
from mlwright.data._markers import LEGACY_MARKERS, normalise_na_values
from mlwright.data._names import suggest_names
from mlwright.data._read import open_table
from mlwright.data._table import Table
from mlwright.data._validation import validate
from mlwright.errors import ConfigError, DataError

__all__ = [
    "SEMANTIC_TYPES",
    "TASKS",
    "ColumnSchema",
    "Problem",
    "Schema",
    "ValidationReport",
    "load_for_target",
]

SCHEMA_VERSION = 1


# --------------------------------------------------------------------------------------------
# the schema


class Schema:
    """Columns with their semantic types and constraints, and the target with its task.

    Build one with :meth:`infer`; save it with :meth:`save` (JSON) and check new data with
    :meth:`validate`.

    Attributes
    ----------
    columns
        One :class:`ColumnSchema` per column, the target included, in data order.
    target
        The target column, or None.
    task
        ``binary``, ``multiclass``, ``regression``, or None without a target.
    task_reason
        The rule that decided the task.
    class_labels
        For classification: the distinct target labels sorted by their text; else None.
    n_rows
        Rows the schema was inferred from.
    na_values
        The missing-value rule the data was read with, as ``na_values`` takes it: None for
        the automatic rule, a list of markers, or a dict per column (see
        :func:`mlwright.data.read`). A model reads new files with it, so that they are read
        the way its training data was.
    """

    def __init__(
        self,
        columns: list[ColumnSchema],
        *,
        target: str | None = None,
        task: str | None = None,
        task_reason: str = "",
        class_labels: list[Any] | None = None,
        n_rows: int = 0,
        na_values: Any = None,
    ) -> None:
        self.columns = columns
        self.target = target
        self.task = task
        self.task_reason = task_reason
        self.class_labels = class_labels
        self.n_rows = n_rows
        self.na_values = normalise_na_values(na_values).to_json()

    def __repr__(self) -> str:
        return f"Schema({len(self.columns)} columns, target={self.target!r}, task={self.task!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and self.to_dict() == other.to_dict()

    @property
    def feature_names(self) -> list[str]:
        """Every column except the target, in data order."""
        return [column.name for column in self.columns if column.name != self.target]

    def column(self, name: str) -> ColumnSchema:
        """The schema of one column (DataError naming close names if there is no such column)."""
        for column in self.columns:
            if column.name == name:
                return column
        names = [column.name for column in self.columns]
        close = suggest_names(name, names)
        hint = f" Did you mean {', '.join(repr(n) for n in close)}?" if close else ""
        raise DataError(f"The schema has no column {name!r}.{hint}")

    # ---------------------------------------------------------------------- inference

    @classmethod
    def infer(
        cls,
        data: Any,
        target: str | None = None,
        task: str | None = None,
        *,
        na_values: Any = None,
    ) -> Schema:
        """Infer the schema of a dataset.

        Parameters
        ----------
        data
            A DataFrame or a :class:`~mlwright.data.Table` (anything :func:`open_table` reads is
            accepted too).
        target
            The column to predict. Its task is detected unless ``task`` is given.
        task
            ``"binary"``, ``"multiclass"`` or ``"regression"`` to override detection.
        na_values
            Which cells are missing when ``data`` is read here (see
            :func:`mlwright.data.read`); recorded as :attr:`na_values`.

        Raises
        ------
        DataError
            The target is not a column (the closest names are suggested), is all missing, has
            a single value, cannot have the requested task, or the data has fewer than two
            rows.

        Examples
        --------
        >>> frame = pd.DataFrame({"x": range(10), "y": ["a", "b"] * 5})
        >>> Schema.infer(frame, target="y").task
        'binary'
        """
        if task is not None and task not in TASKS:
            raise DataError(
                f"Unknown task {task!r}. Use one of {', '.join(TASKS)}, or leave it out to let "
                "mlwright detect it from the target."
            )
        if task is not None and target is None:
            raise DataError(
                f"task={task!r} was given without a target. Say which column to "
                "predict with target=."
            )
        if isinstance(data, Table):
            normalise_na_values(na_values)  # a bad argument is a ConfigError all the same
            if na_values is not None:
                raise ConfigError(
                    "na_values was given with an open Table, whose data has already been "
                    "read. Pass na_values to open_table instead."
                )
            return infer_table(cls, data, target, task)
        with open_table(data, na_values=na_values) as table:
            return infer_table(cls, table, target, task)

    # ---------------------------------------------------------------------- persistence

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (see :meth:`from_dict`)."""
        return {
            "version": SCHEMA_VERSION,
            "target": self.target,
            "task": self.task,
            "task_reason": self.task_reason,
            "class_labels": self.class_labels,
            "n_rows": self.n_rows,
            "na_values": self.na_values,
            "columns": [column.to_dict() for column in self.columns],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        """Rebuild a schema from :meth:`to_dict` output."""
        try:
            version = int(data.get("version", SCHEMA_VERSION))
            if version > SCHEMA_VERSION:
                raise DataError(
                    f"This schema was written by a newer mlwright (schema version {version}); "
                    "upgrade mlwright to read it."
                )
            return cls(
                [ColumnSchema.from_dict(column) for column in data["columns"]],
                target=data.get("target"),
                task=data.get("task"),
                task_reason=data.get("task_reason", ""),
                class_labels=data.get("class_labels"),
                n_rows=int(data.get("n_rows", 0)),
                # A schema written before the rule was recorded comes from data read with every
                # marker missing in every column; new data is read the same way.
                na_values=data.get("na_values", list(LEGACY_MARKERS)),
            )
        except (KeyError, TypeError, ValueError, ConfigError) as err:
            raise DataError(
                f"Not a valid mlwright schema: missing or malformed field {err}. Rebuild it with "
                "Schema.infer()."
            ) from err

    def save(self, path: str | Path) -> Path:
        """Write the schema as JSON; returns the path."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        """Read a schema written by :meth:`save`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as err:
            raise DataError(f"The schema file {path} does not exist. Check the path.") from err
        except json.JSONDecodeError as err:
            raise DataError(
                f"The schema file {path} is not valid JSON ({err}). Rebuild it with "
                "Schema.infer(...).save(path)."
            ) from err
        return cls.from_dict(data)

    # ---------------------------------------------------------------------- validation

    def validate(self, frame: pd.DataFrame, *, require_target: bool = False) -> ValidationReport:
        """Check new data against the schema.

        Parameters
        ----------
        frame
            The data to check (e.g. rows sent for prediction).
        require_target
            Also require the target column (e.g. for evaluation data).

        Returns
        -------
        ValidationReport
            Errors: missing columns, values of the wrong type (e.g. ``'abc'`` in a numeric
            column). Warnings: extra columns, categories not seen in training, numbers outside
            the training range, missing values in a column that had none.
        """
        return validate(self, frame, require_target)


def load_for_target(
    source: Any,
    target: str,
    *,
    task: str | None = None,
    query: str | None = None,
    na_values: Any = None,
) -> tuple[pd.DataFrame, Schema]:
    """Read a dataset for training and infer its schema, with every check on the target.

    Parameters
    ----------
    source
        Anything :func:`mlwright.data.read` accepts.
    target
        The column to predict.
    task
        Optional task override.
    query
        SQL for database sources.
    na_values
        Which cells are missing (see :func:`mlwright.data.read`).

    Returns
    -------
    (DataFrame, Schema)
    """
    if isinstance(source, Table):  # the caller owns it: do not close it
        schema = Schema.infer(source, target=target, task=task, na_values=na_values)
        return source.to_pandas(), schema
    with open_table(source, query=query, na_values=na_values) as table:
        schema = Schema.infer(table, target=target, task=task)
        frame = table.to_pandas()
    return frame, schema
