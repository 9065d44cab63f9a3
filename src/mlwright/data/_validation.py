"""Validation of new data against a schema: types, ranges, categories, missing values.

It runs in pandas on the (usually small) frame handed to a model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlwright.data._columns import ISO_FORMAT, ColumnSchema, Problem, ValidationReport, scalar
from mlwright.data._markers import MISSING_MARKERS
from mlwright.data._names import suggest_names
from mlwright.errors import DataError

__all__ = ["validate"]

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
        return [(scalar(self.index[int(p)]), scalar(self.raw[int(p)])) for p in positions]


def validate(schema: Any, frame: pd.DataFrame, require_target: bool) -> ValidationReport:
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
        rows = [scalar(values.index[int(p)]) for p in np.flatnonzero(missing)[:5]]
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
    form = date_format or ISO_FORMAT
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
