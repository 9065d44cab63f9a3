"""Request validation shared by REST, the Open Inference Protocol and gRPC.

Problems are collected per field and row, then raised together as one
:class:`RequestValidationError` whose ``problems`` become the field-level body of an HTTP 422
(or 400) response or the text of a gRPC ``INVALID_ARGUMENT``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from mlwright.serve._registry import FieldSpec, ServedModel, _category_key

__all__ = [
    "RequestValidationError",
    "check_columns",
    "check_columns_fast",
    "problem",
    "pydantic_problems",
]

#: At most this many problems are reported for one request (the rest are counted).
MAX_PROBLEMS = 50


class RequestValidationError(Exception):
    """A request does not match the model's input.

    Parameters
    ----------
    problems
        Dicts with ``field`` (column or request part), ``row`` (or None), ``kind`` and
        ``message``.
    status
        HTTP status to answer with (422 by default; 400 for malformed bodies, 413 too large).
    """

    def __init__(self, problems: list[dict[str, Any]], status: int = 422) -> None:
        self.problems = problems
        self.status = status
        super().__init__(summary(problems))


def problem(
    field: str | None, kind: str, message: str, row: int | None = None, value: Any = None
) -> dict[str, Any]:
    """One field-level problem as sent to the client."""
    entry: dict[str, Any] = {"field": field, "row": row, "kind": kind, "message": message}
    if value is not None:
        entry["value"] = _shown(value)
    return entry


def pydantic_problems(errors: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic's (or FastAPI's) validation errors as problems: ``field`` is the dotted path."""
    problems = []
    for item in errors[:MAX_PROBLEMS]:
        location = ".".join(str(part) for part in item.get("loc", ()))
        problems.append(
            problem(
                location or None,
                str(item.get("type", "invalid")),
                f"{location or 'body'}: {item.get('msg')}",
            )
        )
    return problems


def _shown(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value if not isinstance(value, str) or len(value) <= 80 else value[:77] + "..."
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def summary(problems: Sequence[dict[str, Any]]) -> str:
    """One paragraph naming the fields (for logs, gRPC and the ``message`` key)."""
    if not problems:
        return "The request is invalid."
    shown = "; ".join(item["message"] for item in problems[:5])
    more = f" (and {len(problems) - 5} more problems)" if len(problems) > 5 else ""
    return f"The request does not match the model's input: {shown}{more}."


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


_EXPECTED = {
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "datetime": "a date/time string (ISO 8601)",
}


def check_value(spec: FieldSpec, value: Any, row: int | None, problems: list) -> Any:
    """Check one value against its field; returns the value to use (or None when bad)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        if spec.nullable and value is None:
            return None
        if isinstance(value, float):
            problems.append(
                problem(
                    spec.name,
                    "nan_not_allowed",
                    f"field '{spec.name}'{_at(row)} is NaN; send null for a missing value"
                    + ("" if spec.nullable else ", but this field may not be missing"),
                    row,
                    value,
                )
            )
        else:
            problems.append(
                problem(
                    spec.name,
                    "missing_value",
                    f"field '{spec.name}'{_at(row)} is null, but the model needs a value (it was "
                    "never missing in training)",
                    row,
                )
            )
        return None
    kind = spec.kind
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(
                problem(
                    spec.name,
                    "wrong_type",
                    f"field '{spec.name}'{_at(row)} is {_type_name(value)} ({_shown(value)!r}); "
                    "expected a number",
                    row,
                    value,
                )
            )
            return None
        if isinstance(value, float) and math.isinf(value):
            problems.append(
                problem(
                    spec.name,
                    "not_finite",
                    f"field '{spec.name}'{_at(row)} is infinite; expected a finite number",
                    row,
                    value,
                )
            )
            return None
        if spec.reject_unseen and _category_key(value) not in spec.category_set:
            _unseen(spec, value, row, problems)
            return None
        return value
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        problems.append(
            problem(
                spec.name,
                "wrong_type",
                f"field '{spec.name}'{_at(row)} is {_type_name(value)} ({_shown(value)!r}); "
                "expected true or false",
                row,
                value,
            )
        )
        return None
    if not isinstance(value, str):
        problems.append(
            problem(
                spec.name,
                "wrong_type",
                f"field '{spec.name}'{_at(row)} is {_type_name(value)} ({_shown(value)!r}); "
                f"expected {_EXPECTED[kind]}",
                row,
                value,
            )
        )
        return None
    if spec.reject_unseen and _category_key(value) not in spec.category_set:
        _unseen(spec, value, row, problems)
        return None
    return value


def _unseen(spec: FieldSpec, value: Any, row: int | None, problems: list) -> None:
    known = ", ".join(repr(c) for c in (spec.categories or ())[:10])
    more = ", ..." if spec.categories and len(spec.categories) > 10 else ""
    problems.append(
        problem(
            spec.name,
            "unseen_category",
            f"field '{spec.name}'{_at(row)} has the category {_shown(value)!r}, which the model "
            f"never saw in training; use one of {known}{more}",
            row,
            value,
        )
    )


def _at(row: int | None) -> str:
    return "" if row is None else f" in record {row}"


_ALLOWED_TYPES: dict[str, frozenset[type]] = {
    "number": frozenset({int, float}),
    "string": frozenset({str}),
    "datetime": frozenset({str}),
    "boolean": frozenset({bool}),
}
_NONE = type(None)


def _fast_columns(model: ServedModel, records: list[Any]) -> dict[str, list[Any]] | None:
    """Columns of well-formed records, checked a column at a time; None if anything is off.

    Type checks over a whole column run at C speed (``set(map(type, values))``), which keeps a
    1,000-row request to about a millisecond of validation. Anything unusual returns None and
    the caller redoes the checks row by row to name every problem.
    """
    if not all(type(record) is dict for record in records):
        return None
    keys = set(records[0]) if len(records) == 1 else set().union(*records)
    if not keys <= model.accepted:
        return None
    # Each record's keys are a subset of ``keys``: equal sizes mean every record has them all.
    complete = all(len(record) == len(keys) for record in records)
    n_rows = len(records)
    columns: dict[str, list[Any]] = {}
    for spec in model.fields:
        name = spec.name
        if name not in keys:
            if spec.required:
                return None
            columns[name] = [None] * n_rows
            continue
        if complete:
            values = [record[name] for record in records]
        else:
            if spec.required:
                return None
            values = [record.get(name) for record in records]
        if not _column_fits(spec, values):
            return None
        columns[name] = values
    return columns


def _column_fits(spec: FieldSpec, values: list[Any]) -> bool:
    """Whether every value of one column is valid as is (checked at C speed where possible)."""
    kinds = set(map(type, values))
    if _NONE in kinds:
        if not spec.nullable:
            return False
        kinds.discard(_NONE)
    if not kinds <= _ALLOWED_TYPES[spec.kind]:
        return False
    if float in kinds:
        floats = [value for value in values if type(value) is float]
        if not all(map(math.isfinite, floats)):
            return False
    if spec.reject_unseen:
        for value in set(values):
            if value is not None and _category_key(value) not in spec.category_set:
                return False
    return True


def check_columns_fast(
    model: ServedModel, present: dict[str, list[Any]], n_rows: int
) -> dict[str, list[Any]] | None:
    """All the model's columns from well-formed per-column values; None if anything is off.

    The column-at-a-time counterpart of the records fast path, for tensors (gRPC): absent
    optional columns become missing values. Anything unusual (an unknown or missing required
    column, a wrong type, a non-finite number, an unseen category) returns None, and the
    caller runs :func:`check_columns` to name every problem.
    """
    fields = model.field_by_name
    if not present.keys() <= fields.keys():
        return None
    columns: dict[str, list[Any]] = {}
    for spec in model.fields:
        values = present.get(spec.name)
        if values is None:
            if spec.required:
                return None
            columns[spec.name] = [None] * n_rows
        elif len(values) != n_rows or not _column_fits(spec, values):
            return None
        else:
            columns[spec.name] = values
    return columns


def check_records(model: ServedModel, records: Any) -> tuple[dict[str, list[Any]], int]:
    """Validate ``{"records": [...]}`` rows; returns per-column values and the row count.

    Raises
    ------
    RequestValidationError
        With one problem per bad field and row (capped at :data:`MAX_PROBLEMS`).
    """
    problems: list[dict[str, Any]] = []
    if not isinstance(records, list):
        raise RequestValidationError(
            [
                problem(
                    "records",
                    "wrong_type",
                    f"'records' is {_type_name(records)}; expected a list of objects, one per row "
                    "(field name -> value)",
                )
            ]
        )
    if not records:
        raise RequestValidationError(
            [
                problem(
                    "records",
                    "empty_batch",
                    "'records' is empty; send at least one record to predict",
                )
            ]
        )
    fast = _fast_columns(model, records)
    if fast is not None:
        return fast, len(records)
    fields = model.fields
    accepted = model.accepted
    columns: dict[str, list[Any]] = {spec.name: [] for spec in fields}
    for row, record in enumerate(records):
        if not isinstance(record, dict):
            problems.append(
                problem(
                    "records",
                    "wrong_type",
                    f"record {row} is {_type_name(record)}; expected an object of field -> value",
                    row,
                )
            )
            continue
        if len(problems) >= MAX_PROBLEMS:
            break
        for key in record:
            if key not in accepted:
                problems.append(
                    problem(
                        str(key),
                        "unknown_field",
                        f"record {row} has the field '{key}', which the model does not know; its "
                        f"fields are {_field_list(model)}",
                        row,
                    )
                )
        for spec in fields:
            if spec.name in record:
                value = check_value(spec, record[spec.name], row, problems)
            else:
                value = None
                if spec.required:
                    problems.append(
                        problem(
                            spec.name,
                            "missing_field",
                            f"record {row} lacks the field '{spec.name}', which the model needs",
                            row,
                        )
                    )
            columns[spec.name].append(value)
    if problems:
        raise RequestValidationError(problems[:MAX_PROBLEMS])
    return columns, len(records)


def _field_list(model: ServedModel) -> str:
    names = [spec.name for spec in model.fields]
    shown = ", ".join(repr(name) for name in names[:12])
    return shown + (", ..." if len(names) > 12 else "")


def check_columns(
    model: ServedModel, columns: dict[str, list[Any]], n_rows: int, problems: list
) -> dict[str, list[Any]]:
    """Validate per-column values (Open Inference Protocol tensors) in place."""
    for name, values in columns.items():
        spec = model.field_by_name.get(name)
        if spec is None:
            continue
        for row, value in enumerate(values):
            values[row] = check_value(spec, value, row if n_rows > 1 else None, problems)
            if len(problems) >= MAX_PROBLEMS:
                return columns
    for spec in model.fields:
        if spec.name not in columns:
            if spec.required:
                problems.append(
                    problem(
                        spec.name,
                        "missing_field",
                        f"the input tensor '{spec.name}' is missing; the model needs it",
                    )
                )
            columns[spec.name] = [None] * n_rows
    return columns
