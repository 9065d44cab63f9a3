"""What a schema is made of: a column's type and constraints, and the problems validation finds."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlwright.errors import SchemaValidationError

__all__ = [
    "ISO_FORMAT",
    "SEMANTIC_TYPES",
    "TASKS",
    "ColumnSchema",
    "Problem",
    "ValidationReport",
    "scalar",
]

SEMANTIC_TYPES = ("numeric", "categorical", "boolean", "datetime", "text", "identifier", "constant")
TASKS = ("binary", "multiclass", "regression")
#: The date format of ISO 8601 text (pandas' name for it).
ISO_FORMAT = "ISO8601"


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


def scalar(value: Any) -> Any:
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
