"""Schema inference (semantic types, target task) and validation of new data against it.

Inference runs DuckDB aggregates over a :class:`~mlwright.data.Table` (a DataFrame is loaded into
one first), so it works on tens of millions of rows: one pass for counts, distinct counts and
ranges, a bounded sample (the first 2,000 values) to recognise dates stored as text, and a
grouped count for the categories of categorical columns.

Validation runs in pandas on the (usually small) frame handed to a model.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlwright.data._markers import LEGACY_MARKERS, MISSING_MARKERS, normalise_na_values
from mlwright.data._names import suggest_names
from mlwright.data._read import open_table
from mlwright.data._table import Table, fetch_one, quote_identifier
from mlwright.errors import ConfigError, DataError, SchemaValidationError

__all__ = [
    "SEMANTIC_TYPES",
    "TASKS",
    "ColumnSchema",
    "Problem",
    "Schema",
    "ValidationReport",
    "load_for_target",
]

SEMANTIC_TYPES = ("numeric", "categorical", "boolean", "datetime", "text", "identifier", "constant")
TASKS = ("binary", "multiclass", "regression")
SCHEMA_VERSION = 1

#: At most this many categories are stored per column (most frequent first).
MAX_CATEGORIES = 200
#: Integer features with at most this many distinct values are categorical.
CATEGORICAL_INTEGER_MAX = 10
#: Integer (or whole-number) targets with at most this many distinct values are classes.
CLASSIFICATION_INTEGER_MAX = 20
#: A column whose distinct values cover this share of its rows is a key, given enough rows.
IDENTIFIER_UNIQUE_SHARE = 0.95
IDENTIFIER_MIN_ROWS = 20
#: Free text: long strings (mean length), mostly with spaces, mostly distinct.
TEXT_MIN_MEAN_LENGTH = 20.0
TEXT_MIN_SPACE_SHARE = 0.5
TEXT_MIN_DISTINCT_SHARE = 0.3
#: Short free text (names, titles: "ford fairmont (auto)"): several words in nearly every value
#: and mostly distinct values. Read as text, its words become features; as a category of
#: hundreds of levels, or an identifier, it would teach nothing.
SHORT_TEXT_MIN_MEAN_LENGTH = 8.0
SHORT_TEXT_MIN_SPACE_SHARE = 0.8
SHORT_TEXT_MIN_DISTINCT_SHARE = 0.5
#: Share of sampled values that must parse as dates for a text column to be a datetime.
DATETIME_PARSE_SHARE = 0.95
DATETIME_SAMPLE = 2000
# More distinct target values than this cannot be classes.
_MAX_CLASSES = 10_000
# Above this many rows distinct counts are estimated (HyperLogLog) to bound memory.
_EXACT_DISTINCT_ROWS = 200_000

_DATE_FORMATS = (
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%Y/%m/%d",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%d/%m/%Y %H:%M",
    "%d.%m.%Y %H:%M:%S",
)
_ISO = "ISO8601"
_BOOLEAN_WORDS = (
    {"true", "false"},
    {"t", "f"},
    {"yes", "no"},
    {"y", "n"},
)
_ID_TOKENS = {"id", "ids", "key", "uuid", "guid", "number", "no", "num", "nr", "index", "idx"}
_INTEGER_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
)


# --------------------------------------------------------------------------------------------
# data classes


@dataclass
class ColumnSchema:
    """What one column holds and the constraints new data is checked against.

    Attributes
    ----------
    name
        The column name, exactly as in the data.
    semantic_type
        One of ``numeric``, ``categorical``, ``boolean``, ``datetime``, ``text``,
        ``identifier``, ``constant``.
    dtype
        Storage type: ``integer``, ``float``, ``string``, ``boolean`` or ``datetime``.
    nullable
        Whether the column had missing values.
    missing_share
        Share of rows with a missing value.
    n_distinct
        Number of distinct non-missing values (estimated above 200,000 rows, except for the
        categories of categorical columns, which are counted exactly).
    categories
        Observed values of categorical and boolean columns, most frequent first (at most
        200); None otherwise.
    categories_complete
        False when the column had more distinct values than were kept in ``categories``.
    minimum, maximum
        Range of numeric columns (numbers) and datetime columns (ISO strings); None otherwise.
    datetime_format
        For datetimes stored as text: ``"ISO8601"`` or the strptime format they follow.
    reason
        Why the column got its semantic type.
    """

    name: str
    semantic_type: str
    dtype: str
    nullable: bool
    missing_share: float
    n_distinct: int
    categories: list[Any] | None = None
    minimum: Any = None
    maximum: Any = None
    reason: str = ""
    categories_complete: bool = True
    datetime_format: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "name": self.name,
            "semantic_type": self.semantic_type,
            "dtype": self.dtype,
            "nullable": self.nullable,
            "missing_share": self.missing_share,
            "n_distinct": self.n_distinct,
            "categories": self.categories,
            "categories_complete": self.categories_complete,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "datetime_format": self.datetime_format,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnSchema:
        """Rebuild from :meth:`to_dict` output."""
        return cls(
            name=data["name"],
            semantic_type=data["semantic_type"],
            dtype=data["dtype"],
            nullable=bool(data["nullable"]),
            missing_share=float(data["missing_share"]),
            n_distinct=int(data["n_distinct"]),
            categories=data.get("categories"),
            minimum=data.get("minimum"),
            maximum=data.get("maximum"),
            reason=data.get("reason", ""),
            categories_complete=bool(data.get("categories_complete", True)),
            datetime_format=data.get("datetime_format"),
        )


@dataclass
class Problem:
    """One way new data does not match a schema.

    Attributes
    ----------
    column
        The column concerned.
    kind
        ``missing_column``, ``extra_column``, ``wrong_type``, ``unseen_category``,
        ``out_of_range`` or ``missing_value``.
    severity
        ``error`` (the data cannot be used) or ``warning`` (it can, but differs from training).
    count
        Rows affected.
    examples
        Up to five ``(row, value)`` pairs; ``row`` is the frame's index label.
    message
        One sentence saying what is wrong and the fix.
    """

    column: str
    kind: str
    severity: str
    count: int
    examples: list[tuple[Any, Any]] = field(default_factory=list)
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (examples as ``{"row": ..., "value": ...}``)."""
        return {
            "column": self.column,
            "kind": self.kind,
            "severity": self.severity,
            "count": self.count,
            "examples": [{"row": row, "value": value} for row, value in self.examples],
            "message": self.message,
        }


@dataclass
class ValidationReport:
    """The problems found by :meth:`Schema.validate`."""

    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        """Problems that make the data unusable."""
        return [problem for problem in self.problems if problem.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """Differences from the training data that do not stop prediction."""
        return [problem for problem in self.problems if problem.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error-level problem."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {"ok": self.ok, "problems": [problem.to_dict() for problem in self.problems]}

    def raise_for_errors(self, where: str) -> None:
        """Raise :class:`~mlwright.errors.SchemaValidationError` if there are errors.

        Parameters
        ----------
        where
            What was validated, for the message (e.g. ``"scoring.csv"``, ``"the request"``).
        """
        errors = self.errors
        if not errors:
            return
        first = errors[0].message
        more = ""
        if len(errors) > 1:
            others = ", ".join(f"{problem.column!r} ({problem.kind})" for problem in errors[1:6])
            more = f" {len(errors) - 1} more problem(s): {others}."
        raise SchemaValidationError(
            f"The data in {where} does not match the model's schema: {first}{more}",
            problems=[problem.to_dict() for problem in errors],
        )


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
            return _infer_table(cls, data, target, task)
        with open_table(data, na_values=na_values) as table:
            return _infer_table(cls, table, target, task)

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
        return _validate(self, frame, require_target)


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


# --------------------------------------------------------------------------------------------
# inference on a DuckDB table


def _storage_type(duckdb_type: str) -> str:
    kind = duckdb_type.upper()
    if kind == "BOOLEAN":
        return "boolean"
    if kind.startswith(_INTEGER_TYPES):
        return "integer"
    if kind.startswith(("FLOAT", "DOUBLE", "DECIMAL", "REAL")):
        return "float"
    if kind.startswith(("DATE", "TIMESTAMP")):
        return "datetime"
    return "string"


def _clean_expression(column: str, dtype: str, duckdb_type: str) -> str:
    identifier = quote_identifier(column)
    if dtype == "float":
        return f"CASE WHEN isnan({identifier}) THEN NULL ELSE CAST({identifier} AS DOUBLE) END"
    if dtype == "string" and duckdb_type.upper() != "VARCHAR":
        return f"CAST({identifier} AS VARCHAR)"
    if dtype == "datetime":
        return f"CAST({identifier} AS TIMESTAMP)"
    return identifier


def _scalar(value: Any) -> Any:
    """A JSON-friendly Python scalar."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isfinite(number) and number.is_integer() and abs(number) < 2**53:
            return number
        return number
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _id_like_name(name: str) -> bool:
    tokens = [token.lower() for token in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", name)]
    if not tokens:
        return False
    return tokens[-1] in _ID_TOKENS or name.strip().lower() in {"row", "rowid", "index"}


def _infer_table(cls: type[Schema], table: Table, target: str | None, task: str | None) -> Schema:
    connection = table.connection
    if target is not None and target not in table.columns:
        close = suggest_names(target, table.columns)
        hint = (
            f"Did you mean {', '.join(repr(name) for name in close)}?"
            if close
            else f"The columns are: {', '.join(repr(name) for name in table.columns[:15])}"
            + (" ..." if len(table.columns) > 15 else "")
            + "."
        )
        raise DataError(
            f"The target column {target!r} is not in {table.source}. {hint} Pass the exact "
            "column name (names are case-sensitive) with --target / target=."
        )
    if target is not None and table.n_rows < 2:
        raise DataError(
            f"{table.source} has only {table.n_rows} row; a model cannot be trained or "
            "validated on it. Provide a dataset with many rows (at least hundreds for a "
            "useful model)."
        )
    n_rows = table.n_rows
    dtypes = {name: _storage_type(table.column_types[name]) for name in table.columns}
    cleaned = ", ".join(
        f"{_clean_expression(name, dtypes[name], table.column_types[name])} AS "
        f"{quote_identifier(name)}"
        for name in table.columns
    )
    view = f"(SELECT {cleaned} FROM {table.ref})"

    # One pass for counts, distinct counts, ranges and string shapes of every column.
    distinct = (
        "count(DISTINCT {0})" if n_rows <= _EXACT_DISTINCT_ROWS else ("approx_count_distinct({0})")
    )
    aggregates: list[str] = []
    layout: list[tuple[str, str]] = []
    for name in table.columns:
        identifier = quote_identifier(name)
        aggregates += [f"count({identifier})", distinct.format(identifier)]
        layout += [(name, "non_missing"), (name, "n_distinct")]
        if dtypes[name] in {"integer", "float", "datetime"}:
            aggregates += [f"min({identifier})", f"max({identifier})"]
            layout += [(name, "minimum"), (name, "maximum")]
        if dtypes[name] == "float":
            aggregates.append(
                f"count_if({identifier} <> floor({identifier}) OR isinf({identifier}))"
            )
            layout.append((name, "fractional"))
        if dtypes[name] == "string":
            aggregates += [
                f"avg(length({identifier}))",
                f"avg(CASE WHEN contains({identifier}, ' ') THEN 1.0 ELSE 0.0 END)",
            ]
            layout += [(name, "mean_length"), (name, "space_share")]
    stats: dict[str, dict[str, Any]] = {name: {} for name in table.columns}
    if aggregates:
        values = fetch_one(connection, f"SELECT {', '.join(aggregates)} FROM {view}")
        for (name, key), value in zip(layout, values, strict=True):
            stats[name][key] = value

    columns: list[ColumnSchema] = []
    for name in table.columns:
        columns.append(_infer_column(connection, view, name, dtypes[name], stats[name], n_rows))

    rule = getattr(table, "na_values", None)
    schema = cls(
        columns, n_rows=n_rows, na_values=rule.to_json() if hasattr(rule, "to_json") else rule
    )
    if target is not None:
        target_column = next(column for column in columns if column.name == target)
        markers = (getattr(table, "missing_markers", None) or {}).get(target) or {}
        _set_target(schema, connection, view, target_column, task, table.source, markers)
    return schema


def _infer_column(
    connection: Any,
    view: str,
    name: str,
    dtype: str,
    stats: dict[str, Any],
    n_rows: int,
) -> ColumnSchema:
    non_missing = int(stats.get("non_missing") or 0)
    n_distinct = int(stats.get("n_distinct") or 0)
    missing = n_rows - non_missing
    column = ColumnSchema(
        name=name,
        semantic_type="constant",
        dtype=dtype,
        nullable=missing > 0,
        missing_share=round(missing / n_rows, 6) if n_rows else 0.0,
        n_distinct=n_distinct,
    )
    if dtype in {"integer", "float"}:
        column.minimum = _scalar(stats.get("minimum"))
        column.maximum = _scalar(stats.get("maximum"))
    elif dtype == "datetime":
        column.minimum = _scalar(stats.get("minimum"))
        column.maximum = _scalar(stats.get("maximum"))

    if non_missing == 0:
        column.reason = "every value is missing"
        return column
    if n_distinct <= 1:
        _fill_categories(connection, view, column)
        shown = column.categories[0] if column.categories else "?"
        column.reason = f"a single value ({shown!r}) in every non-missing row"
        return column

    distinct_share = n_distinct / non_missing
    semantic, reason = "numeric", ""
    if dtype == "boolean":
        semantic, reason = "boolean", "true/false values"
    elif dtype == "datetime":
        semantic, reason = "datetime", "stored as dates/times"
    elif dtype == "string":
        semantic, reason = _classify_string(connection, view, column, stats, distinct_share)
    elif dtype == "integer":
        semantic, reason = _classify_integer(column, distinct_share, non_missing)
    elif dtype == "float":
        semantic, reason = _classify_float(column, stats, distinct_share, non_missing)
    column.semantic_type = semantic
    column.reason = reason
    if semantic in {"categorical", "boolean"}:
        _fill_categories(connection, view, column)
    if semantic in {"datetime"} and dtype == "string":
        _fill_datetime_range(connection, view, column)
    if semantic not in {"numeric", "datetime"}:
        column.minimum = column.maximum = None if dtype == "string" else column.minimum
        if semantic in {"categorical", "boolean", "identifier", "text", "constant"}:
            column.minimum = column.maximum = None
    return column


def _classify_string(
    connection: Any,
    view: str,
    column: ColumnSchema,
    stats: dict[str, Any],
    distinct_share: float,
) -> tuple[str, str]:
    non_missing_rows = column.n_distinct / distinct_share if distinct_share else 0
    if column.n_distinct == 2:
        values = _top_values(connection, view, column.name, 2)
        lowered = {str(value).strip().lower() for value, _count in values}
        if lowered in _BOOLEAN_WORDS:
            return "boolean", f"two values that mean true/false ({', '.join(sorted(lowered))})"
    date_format, share = _sniff_datetime(connection, view, column.name)
    if date_format is not None:
        column.datetime_format = date_format
        return "datetime", (
            f"{share:.0%} of the first {DATETIME_SAMPLE} values parse as dates "
            f"({date_format}); stored as text"
        )
    mean_length = float(stats.get("mean_length") or 0.0)
    space_share = float(stats.get("space_share") or 0.0)
    long_text = (
        mean_length >= TEXT_MIN_MEAN_LENGTH
        and space_share >= TEXT_MIN_SPACE_SHARE
        and distinct_share >= TEXT_MIN_DISTINCT_SHARE
    )
    short_text = (
        mean_length >= SHORT_TEXT_MIN_MEAN_LENGTH
        and space_share >= SHORT_TEXT_MIN_SPACE_SHARE
        and distinct_share >= SHORT_TEXT_MIN_DISTINCT_SHARE
    )
    if long_text or short_text:
        return "text", (
            f"free text: mean length {mean_length:.0f} characters, {space_share:.0%} contain "
            f"spaces, {distinct_share:.0%} distinct"
        )
    if non_missing_rows >= IDENTIFIER_MIN_ROWS and distinct_share >= IDENTIFIER_UNIQUE_SHARE:
        return "identifier", (
            f"{column.n_distinct} distinct values in {int(non_missing_rows)} rows "
            f"({distinct_share:.0%} unique): a key, not a feature"
        )
    return "categorical", f"text with {column.n_distinct} distinct values"


def _classify_integer(
    column: ColumnSchema, distinct_share: float, non_missing: int
) -> tuple[str, str]:
    minimum, maximum = column.minimum, column.maximum
    if column.n_distinct == 2 and {minimum, maximum} == {0, 1}:
        return "boolean", "integer 0/1 flag"
    if non_missing >= IDENTIFIER_MIN_ROWS and distinct_share >= IDENTIFIER_UNIQUE_SHARE:
        if _id_like_name(column.name):
            return "identifier", (
                f"name looks like a key and {distinct_share:.0%} of its values are distinct"
            )
        span = (maximum - minimum + 1) if minimum is not None and maximum is not None else 0
        if distinct_share >= 0.99 and span and span <= 1.05 * column.n_distinct:
            return "identifier", (
                f"consecutive unique integers {minimum}..{maximum} (a row number or running id)"
            )
    if column.n_distinct <= CATEGORICAL_INTEGER_MAX:
        return "categorical", (
            f"integer with {column.n_distinct} distinct values "
            f"(at most {CATEGORICAL_INTEGER_MAX}: treated as categories)"
        )
    return "numeric", f"integer with {column.n_distinct} distinct values"


def _classify_float(
    column: ColumnSchema, stats: dict[str, Any], distinct_share: float, non_missing: int
) -> tuple[str, str]:
    whole_numbers = int(stats.get("fractional") or 0) == 0
    if (
        whole_numbers
        and _id_like_name(column.name)
        and non_missing >= IDENTIFIER_MIN_ROWS
        and distinct_share >= IDENTIFIER_UNIQUE_SHARE
    ):
        return "identifier", (
            "whole numbers with a key-like name, "
            f"{distinct_share:.0%} distinct (stored as decimals)"
        )
    # Decimal measurements are never keys, however unique their values.
    return "numeric", f"numbers with {column.n_distinct} distinct values"


def _top_values(connection: Any, view: str, name: str, limit: int | None) -> list[tuple[Any, int]]:
    identifier = quote_identifier(name)
    limit_sql = f" LIMIT {int(limit)}" if limit is not None else ""
    return connection.execute(
        f"SELECT {identifier} AS value, count(*) AS n FROM {view} WHERE {identifier} IS NOT NULL "
        f"GROUP BY {identifier} ORDER BY n DESC, CAST({identifier} AS VARCHAR){limit_sql}"
    ).fetchall()


def _fill_categories(connection: Any, view: str, column: ColumnSchema) -> None:
    values = _top_values(connection, view, column.name, MAX_CATEGORIES + 1)
    column.categories_complete = len(values) <= MAX_CATEGORIES
    column.categories = [_scalar(value) for value, _count in values[:MAX_CATEGORIES]]
    if column.categories_complete:
        column.n_distinct = len(values)


def _sniff_datetime(connection: Any, view: str, name: str) -> tuple[str | None, float]:
    identifier = quote_identifier(name)
    sample = (
        f"(SELECT trim({identifier}) AS v FROM {view} WHERE {identifier} IS NOT NULL "
        f"LIMIT {DATETIME_SAMPLE})"
    )
    guard = r"regexp_full_match(v, '\d[\d\-/.: T]*\d')"
    parsers = [f"count_if({guard} AND TRY_CAST(v AS TIMESTAMP) IS NOT NULL)"] + [
        f"count_if({guard} AND try_strptime(v, '{fmt}') IS NOT NULL)" for fmt in _DATE_FORMATS
    ]
    # Digits alone ("2020", "20200101") are numbers or codes, not dates.
    require = r"count_if(regexp_full_match(v, '\d+'))"
    row = connection.execute(f"SELECT count(*), {require}, {', '.join(parsers)} FROM {sample}")
    counts = row.fetchone()
    total, only_digits, parsed = counts[0], counts[1], counts[2:]
    if not total or only_digits == total:
        return None, 0.0
    best = max(range(len(parsed)), key=lambda index: parsed[index])
    share = parsed[best] / total
    if share < DATETIME_PARSE_SHARE:
        return None, share
    return (_ISO if best == 0 else _DATE_FORMATS[best - 1]), share


def _parse_expression(identifier: str, date_format: str) -> str:
    if date_format == _ISO:
        return f"TRY_CAST(trim({identifier}) AS TIMESTAMP)"
    return f"try_strptime(trim({identifier}), '{date_format}')"


def _fill_datetime_range(connection: Any, view: str, column: ColumnSchema) -> None:
    """Find the format of a text datetime column and its range over all rows."""
    date_format = column.datetime_format
    if date_format is None:
        date_format, _share = _sniff_datetime(connection, view, column.name)
        column.datetime_format = date_format
    if date_format is None:
        return
    parsed = _parse_expression(quote_identifier(column.name), date_format)
    minimum, maximum = connection.execute(
        f"SELECT min({parsed}), max({parsed}) FROM {view}"
    ).fetchone()
    column.minimum = _scalar(minimum)
    column.maximum = _scalar(maximum)


def _set_target(
    schema: Schema,
    connection: Any,
    view: str,
    column: ColumnSchema,
    task: str | None,
    source: str,
    markers: dict[str, int] | None = None,
) -> None:
    name = column.name
    schema.target = name
    non_missing = round(schema.n_rows * (1 - column.missing_share))
    if non_missing == 0:
        read_from = {marker: count for marker, count in (markers or {}).items() if marker}
        note = (
            " (read from markers "
            + ", ".join(f"{marker!r}: {count}" for marker, count in read_from.items())
            + "; a column of nothing but markers holds no data)"
            if read_from
            else ""
        )
        raise DataError(
            f"The target column {name!r} in {source} is empty: all {schema.n_rows} values are "
            f"missing{note}. Choose the column that holds the outcome to predict, or fill in "
            "its values."
        )
    if column.n_distinct <= 1:
        values = _top_values(connection, view, name, 1)
        shown = _scalar(values[0][0]) if values else "?"
        raise DataError(
            f"The target column {name!r} in {source} has a single value ({shown!r}) in every "
            "row, so there is nothing to predict. Use data that contains every outcome (e.g. "
            "both classes), or choose another target column."
        )
    if column.dtype == "datetime" or column.semantic_type == "datetime":
        if task != "multiclass":
            raise DataError(
                f"The target column {name!r} in {source} holds dates, which mlwright cannot "
                "predict directly. Derive a number (e.g. days until the event) or a label "
                "column and use that as the target."
            )
    numeric = column.dtype in {"integer", "float"}
    n_distinct = column.n_distinct
    labels: list[Any] = []
    if n_distinct <= _MAX_CLASSES:
        labels = [value for value, _count in _top_values(connection, view, name, None)]
        n_distinct = len(labels)
    many = "more than 10,000" if n_distinct > _MAX_CLASSES else str(n_distinct)
    whole_numbers = column.dtype == "integer"
    if column.dtype == "float":
        identifier = quote_identifier(name)
        (fractional,) = connection.execute(
            f"SELECT count_if({identifier} <> floor({identifier})) FROM {view}"
        ).fetchone()
        whole_numbers = fractional == 0

    if task is not None:
        if task == "regression" and not numeric:
            example = next(
                (value for value in labels if not _is_number_text(value)),
                labels[0] if labels else "?",
            )
            raise DataError(
                f"task='regression' needs a numeric target, but {name!r} in {source} holds "
                f"text (e.g. {_scalar(example)!r}). Use task='binary' or 'multiclass' for "
                "labels, or convert the column to numbers."
            )
        if task == "binary" and n_distinct != 2:
            raise DataError(
                f"task='binary' needs exactly 2 target values, but {name!r} in {source} has "
                f"{n_distinct}. Use task='multiclass'"
                + (" or 'regression'" if numeric else "")
                + " , or leave task out to detect it."
            )
        if task == "multiclass" and n_distinct > _MAX_CLASSES:
            raise DataError(
                f"task='multiclass' on {name!r} in {source} would mean more than 10,000 "
                "classes. Use task='regression' for a numeric target, or group the labels."
            )
        schema.task = task
        schema.task_reason = f"set explicitly (task={task!r}); the target has {many} values"
    elif n_distinct == 2:
        schema.task = "binary"
        schema.task_reason = "the target has 2 distinct values"
    elif not numeric:
        schema.task = "multiclass"
        schema.task_reason = f"the target holds text labels with {n_distinct} distinct values"
        if n_distinct > _MAX_CLASSES:
            raise DataError(
                f"The target column {name!r} in {source} holds text with more than 10,000 "
                "distinct values, which is neither a set of classes nor a number. If it should "
                "be numeric, fix the values that are not numbers; otherwise choose another "
                "target."
            )
    elif whole_numbers and n_distinct <= CLASSIFICATION_INTEGER_MAX:
        schema.task = "multiclass"
        schema.task_reason = (
            f"the target holds whole numbers with {n_distinct} distinct values (at most "
            f"{CLASSIFICATION_INTEGER_MAX}: treated as classes; pass task='regression' to "
            "predict them as quantities)"
        )
    else:
        schema.task = "regression"
        schema.task_reason = f"the target is numeric with {many} distinct values" + (
            "" if whole_numbers else " (not all whole numbers)"
        )
    if schema.task in {"binary", "multiclass"}:
        schema.class_labels = sorted((_scalar(value) for value in labels), key=str)


def _is_number_text(value: Any) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# validation


_MARKER_SET = frozenset(MISSING_MARKERS)


class _Values:
    """One column of the frame under validation as NumPy arrays (pandas per-Series overhead
    would dominate validation of the few rows a prediction request holds)."""

    def __init__(self, series: pd.Series, categories: frozenset[str] = frozenset()) -> None:
        # ``categories``: the column's known text values; a marker among them (``?`` in
        # workclass) is that category, not a missing value.
        self.index = series.index
        dtype = series.dtype
        self.numeric: np.ndarray | None = None
        if pd.api.types.is_bool_dtype(dtype) and not isinstance(dtype, pd.BooleanDtype):
            self.raw = series.to_numpy()
            self.numeric = self.raw.astype(np.float64)
            self.missing = np.zeros(len(series), dtype=bool)
        elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            self.numeric = series.to_numpy(dtype=np.float64, na_value=np.nan)
            self.raw = self.numeric
            self.missing = np.isnan(self.numeric)
        else:
            self.raw = series.to_numpy(dtype=object)
            missing = pd.isna(self.raw)
            for position, value in enumerate(self.raw):
                if (
                    isinstance(value, str)
                    and value.strip() in _MARKER_SET
                    and value not in categories
                    and value.strip() not in categories
                ):
                    missing[position] = True
            self.missing = np.asarray(missing, dtype=bool)

    def numbers(self) -> np.ndarray:
        """The values as floats; NaN where missing or not a number."""
        if self.numeric is not None:
            return self.numeric
        result = np.full(len(self.raw), np.nan)
        for position, value in enumerate(self.raw):
            if self.missing[position]:
                continue
            if isinstance(value, (bool, np.bool_, int, float, np.number)):
                result[position] = float(value)
            elif isinstance(value, str):
                try:
                    result[position] = float(value.strip())
                except ValueError:
                    pass
        return result

    def examples(self, mask: np.ndarray) -> list[tuple[Any, Any]]:
        positions = np.flatnonzero(mask)[:5]
        return [(_scalar(self.index[int(p)]), _scalar(self.raw[int(p)])) for p in positions]


def _validate(schema: Schema, frame: pd.DataFrame, require_target: bool) -> ValidationReport:
    if not isinstance(frame, pd.DataFrame):
        raise DataError(
            f"Schema.validate takes a pandas DataFrame, got {type(frame).__name__}. Read the "
            "data with mlwright.data.read first."
        )
    problems: list[Problem] = []
    present: dict[str, int] = {}
    for position, label in enumerate(frame.columns):
        present.setdefault(str(label), position)  # with duplicate labels the first is checked
    known = {column.name for column in schema.columns}
    n = len(frame)
    for column in schema.columns:
        if column.name in present:
            continue
        if column.name == schema.target and not require_target:
            continue
        close = suggest_names(column.name, [name for name in present if name not in known])
        hint = f" (found {', '.join(repr(name) for name in close)} instead?)" if close else ""
        problems.append(
            Problem(
                column=column.name,
                kind="missing_column",
                severity="error",
                count=n,
                message=(
                    f"Column {column.name!r} is missing{hint}; add it with the same name as in "
                    "the training data (missing values are allowed)."
                ),
            )
        )
    for name in present:
        if name not in known:
            problems.append(
                Problem(
                    column=name,
                    kind="extra_column",
                    severity="warning",
                    count=n,
                    message=(
                        f"Column {name!r} was not in the training data and is ignored; drop it "
                        "or check its spelling."
                    ),
                )
            )
    for column in schema.columns:
        if column.name not in present:
            continue
        problems.extend(_check_column(column, frame.iloc[:, present[column.name]]))
    return ValidationReport(problems)


def _check_column(column: ColumnSchema, series: pd.Series) -> list[Problem]:
    problems: list[Problem] = []
    name = column.name
    values = _Values(series, _known_categories(column)[1] if column.categories else frozenset())
    missing = values.missing
    n_missing = int(missing.sum())
    if n_missing and not column.nullable and column.semantic_type != "constant":
        rows = [_scalar(values.index[int(p)]) for p in np.flatnonzero(missing)[:5]]
        problems.append(
            Problem(
                column=name,
                kind="missing_value",
                severity="warning",
                count=n_missing,
                examples=[(row, None) for row in rows],
                message=(
                    f"Column {name!r} has {n_missing} missing value(s) but had none in "
                    "training; the model imputes them, but check the data source."
                ),
            )
        )
    present = ~missing
    if column.semantic_type in {"text", "identifier", "constant"}:
        return problems
    if column.dtype in {"integer", "float"}:
        numbers = values.numbers()
        bad = present & np.isnan(numbers)
        if bad.any():
            examples = values.examples(bad)
            row, value = examples[0]
            problems.append(
                Problem(
                    column=name,
                    kind="wrong_type",
                    severity="error",
                    count=int(bad.sum()),
                    examples=examples,
                    message=(
                        f"Column {name!r} has value {value!r} in row {row}; expected a number "
                        f"({int(bad.sum())} such value(s)). Send numbers, or leave the cell "
                        "empty for a missing value."
                    ),
                )
            )
        valid = present & ~np.isnan(numbers)
        if column.semantic_type in {"categorical", "boolean"}:
            problems.extend(_unseen(column, values, valid, numbers))
        elif column.minimum is not None and column.maximum is not None:
            with np.errstate(invalid="ignore"):
                outside = valid & ((numbers < column.minimum) | (numbers > column.maximum))
            if outside.any():
                examples = values.examples(outside)
                problems.append(
                    Problem(
                        column=name,
                        kind="out_of_range",
                        severity="warning",
                        count=int(outside.sum()),
                        examples=examples,
                        message=(
                            f"Column {name!r} has {int(outside.sum())} value(s) outside the "
                            f"training range [{column.minimum}, {column.maximum}], e.g. "
                            f"{examples[0][1]!r} in row {examples[0][0]}; predictions there "
                            "are extrapolations, so check the values."
                        ),
                    )
                )
        return problems
    if column.semantic_type == "datetime":
        parsed = _as_datetimes(series, column.datetime_format)
        not_parsed = np.asarray(parsed.isna(), dtype=bool)
        bad = present & not_parsed
        if bad.any():
            examples = values.examples(bad)
            row, value = examples[0]
            form = column.datetime_format or "ISO8601"
            problems.append(
                Problem(
                    column=name,
                    kind="wrong_type",
                    severity="error",
                    count=int(bad.sum()),
                    examples=examples,
                    message=(
                        f"Column {name!r} has value {value!r} in row {row}; expected a date "
                        f"({form}) ({int(bad.sum())} such value(s)). Send dates in that form."
                    ),
                )
            )
        valid = present & ~not_parsed
        if column.minimum is not None and column.maximum is not None and valid.any():
            low, high = pd.Timestamp(column.minimum), pd.Timestamp(column.maximum)
            stamps = parsed.to_numpy()
            outside = valid & ((stamps < low.to_datetime64()) | (stamps > high.to_datetime64()))
            if outside.any():
                examples = values.examples(outside)
                problems.append(
                    Problem(
                        column=name,
                        kind="out_of_range",
                        severity="warning",
                        count=int(outside.sum()),
                        examples=examples,
                        message=(
                            f"Column {name!r} has {int(outside.sum())} date(s) outside the "
                            f"training range {column.minimum} .. {column.maximum}, e.g. "
                            f"{examples[0][1]!r} in row {examples[0][0]}; check them."
                        ),
                    )
                )
        return problems
    if column.semantic_type in {"categorical", "boolean"}:
        problems.extend(_unseen(column, values, present, None))
    return problems


def _as_datetimes(values: pd.Series, date_format: str | None) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values
    text = values.map(lambda value: value.strip() if isinstance(value, str) else value)
    form = date_format or _ISO
    return pd.to_datetime(text, errors="coerce", format=form)


def _known_categories(column: ColumnSchema) -> tuple[frozenset[float], frozenset[str]]:
    cached = column.__dict__.get("_known")
    if cached is None:
        numbers = set()
        for value in column.categories or []:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                numbers.add(float(value))
        texts = {str(value) for value in column.categories or []}
        if column.dtype == "boolean":
            texts = {text.lower() for text in texts}
        cached = (frozenset(numbers), frozenset(texts))
        column.__dict__["_known"] = cached
    return cached


def _unseen(
    column: ColumnSchema, values: _Values, valid: np.ndarray, numbers: np.ndarray | None
) -> list[Problem]:
    if not column.categories or not column.categories_complete:
        return []
    known_numbers, known_text = _known_categories(column)
    lowercase = column.dtype == "boolean"  # "True", "true" and True are one value
    unseen = np.zeros(len(valid), dtype=bool)
    for position in np.flatnonzero(valid):
        if numbers is not None:
            unseen[position] = float(numbers[position]) not in known_numbers
        else:
            value = values.raw[position]
            text = str(value)
            if lowercase or isinstance(value, (bool, np.bool_)):
                text = text.lower()
            unseen[position] = text not in known_text
    if not unseen.any():
        return []
    examples = values.examples(unseen)
    shown = ", ".join(repr(value) for value in column.categories[:8])
    more = ", ..." if len(column.categories) > 8 else ""
    return [
        Problem(
            column=column.name,
            kind="unseen_category",
            severity="warning",
            count=int(unseen.sum()),
            examples=examples,
            message=(
                f"Column {column.name!r} has {int(unseen.sum())} value(s) not seen in training, "
                f"e.g. {examples[0][1]!r} in row {examples[0][0]} (known: {shown}{more}); the "
                "model treats them as unknown, so check for typos."
            ),
        )
    ]
