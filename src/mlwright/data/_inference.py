"""Schema inference on a DuckDB table: semantic types, categories, date formats, the target's task.

Inference runs DuckDB aggregates over a :class:`~mlwright.data.Table` (a DataFrame is loaded into
one first), so it works on tens of millions of rows: one pass for counts, distinct counts and
ranges, a bounded sample (the first 2,000 values) to recognise dates stored as text, and a
grouped count for the categories of categorical columns.
"""

from __future__ import annotations

import re
from typing import Any

from mlwright.data._columns import ISO_FORMAT, ColumnSchema, scalar
from mlwright.data._names import suggest_names
from mlwright.data._stats import is_integer_type
from mlwright.data._table import Table, fetch_one, quote_identifier
from mlwright.errors import DataError

__all__ = ["infer_table"]

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
_BOOLEAN_WORDS = (
    {"true", "false"},
    {"t", "f"},
    {"yes", "no"},
    {"y", "n"},
)
_ID_TOKENS = {"id", "ids", "key", "uuid", "guid", "number", "no", "num", "nr", "index", "idx"}


# --------------------------------------------------------------------------------------------
# inference on a DuckDB table


def _storage_type(duckdb_type: str) -> str:
    kind = duckdb_type.upper()
    if kind == "BOOLEAN":
        return "boolean"
    if is_integer_type(kind):
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


def _id_like_name(name: str) -> bool:
    tokens = [token.lower() for token in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", name)]
    if not tokens:
        return False
    return tokens[-1] in _ID_TOKENS or name.strip().lower() in {"row", "rowid", "index"}


def infer_table(cls: type, table: Table, target: str | None, task: str | None) -> Any:
    """A ``cls`` (:class:`~mlwright.data.Schema`) inferred from ``table``."""
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
        column.minimum = scalar(stats.get("minimum"))
        column.maximum = scalar(stats.get("maximum"))
    elif dtype == "datetime":
        column.minimum = scalar(stats.get("minimum"))
        column.maximum = scalar(stats.get("maximum"))

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
    column.categories = [scalar(value) for value, _count in values[:MAX_CATEGORIES]]
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
    return (ISO_FORMAT if best == 0 else _DATE_FORMATS[best - 1]), share


def _parse_expression(identifier: str, date_format: str) -> str:
    if date_format == ISO_FORMAT:
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
    column.minimum = scalar(minimum)
    column.maximum = scalar(maximum)


def _set_target(
    schema: Any,
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
        shown = scalar(values[0][0]) if values else "?"
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
                f"text (e.g. {scalar(example)!r}). Use task='binary' or 'multiclass' for "
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
        schema.class_labels = sorted((scalar(value) for value in labels), key=str)


def _is_number_text(value: Any) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return True
