"""Reading data from files, DuckDB databases and SQL URLs into DuckDB (Table) or pandas.

Every reader loads into a DuckDB table (see :mod:`mlwright.data._table`), so CSV, Parquet and JSON
Lines files of any size are scanned by DuckDB and never parsed whole by pandas. Third-party
errors are translated here, at the boundary, into :class:`~mlwright.errors.DataError` messages
that name the file, the line or column, and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mlwright.data._markers import (
    MISSING_MARKERS,
    MarkerRule,
    normalise_na_values,
)
from mlwright.data._markers import apply_to_table as apply_markers_to_table
from mlwright.data._read_common import SUPPORTED_FORMATS, _check_path, _kind_of
from mlwright.data._read_csv import _load_csv
from mlwright.data._read_files import (
    _load_arff,
    _load_excel,
    _load_json,
    _load_parquet,
    _table_from_frame,
)
from mlwright.data._read_sql import _open_duckdb_file, _open_url
from mlwright.data._table import Table
from mlwright.errors import ConfigError, DataError

__all__ = [
    "MISSING_MARKERS",
    "MarkerRule",
    "SUPPORTED_FORMATS",
    "open_table",
    "read",
]


def read(
    source: Any,
    *,
    query: str | None = None,
    columns: Sequence[str] | None = None,
    nrows: int | None = None,
    na_values: Any = None,
) -> pd.DataFrame:
    """Read a dataset into a pandas DataFrame.

    Parameters
    ----------
    source
        A file path (CSV/TSV/TXT, optionally gzip-compressed; Parquet; JSON Lines; Excel;
        ARFF), a DuckDB or SQLite database file (with ``query``), an SQLAlchemy URL such as
        ``sqlite:///shop.db`` or ``postgresql://user:pw@host/db`` (with ``query``), a
        DataFrame (returned as is unless ``na_values`` is given), or an open Table (converted;
        it stays open).
    query
        SQL to run against a database source.
    columns
        Only these columns (in this order).
    nrows
        Only the first ``nrows`` rows.
    na_values
        Which cells are missing values. None (the default) applies the automatic rule below;
        a list of strings, e.g. ``["?", "-999"]``, makes exactly those strings (and the empty
        cell) missing in every column, numbers included, with the automatic rule off; a dict
        ``{column: [markers]}`` does that for the listed columns only, the others following
        the automatic rule. ``[]`` means only empty cells are missing.

    Returns
    -------
    pandas.DataFrame
        Integers are ``int64`` (``float64`` when the column has missing values), decimals
        ``float64``, text pandas' ``str`` dtype.

        Missing values in text files (CSV/TSV, Excel) follow this rule. The empty cell is
        always missing. The markers ``NA``, ``N/A``, ``null``, ``NULL``, ``NaN``, ``?`` and
        ``-`` (compared after stripping surrounding whitespace) become missing only where they
        are anomalous for their column: when every other value of the column is a number
        (the column is then numeric), or when the column holds nothing but markers. In any
        other column (text, categories, labels) they are regular values and are kept: ``?``
        stays a category, ``-`` a label of a ``+``/``-`` target. Typed sources (Parquet, JSON
        Lines, databases, DataFrames) keep their values unless ``na_values`` lists markers.

        ``frame.attrs["missing_markers"]`` holds ``{column: {marker: count}}``, the cells
        each marker turned into missing (``""`` counts empty cells);
        ``frame.attrs["kept_markers"]`` the cells of each marker kept as values.

    Raises
    ------
    DataError
        The source does not exist, is empty, is not tabular data, has ragged rows or duplicate
        column names, or the database cannot be reached or queried.
    ConfigError
        ``na_values`` is not a list of strings or a dict of such lists, or names a column the
        data does not have.

    Examples
    --------
    >>> frame = read("examples/credit-g/train.csv")  # doctest: +SKIP
    >>> frame = read("adult.csv", na_values=["?"])  # doctest: +SKIP
    """
    rule = normalise_na_values(na_values)
    if isinstance(source, pd.DataFrame) and not rule.explicit:
        return source
    if isinstance(source, Table):  # the caller owns it: convert without closing it
        _refuse_rule_for_table(rule)
        frame = source.to_pandas(
            columns=list(columns) if columns is not None else None, limit=nrows
        )
        frame.attrs["missing_markers"] = dict(frame.attrs.get("missing_markers", {}))
        return frame
    with open_table(source, query=query, columns=columns, nrows=nrows, na_values=rule) as table:
        return table.to_pandas()


def open_table(
    source: Any,
    *,
    query: str | None = None,
    columns: Sequence[str] | None = None,
    nrows: int | None = None,
    na_values: Any = None,
) -> Table:
    """Load a dataset of any size into a DuckDB-backed :class:`Table`.

    Takes the same sources and ``na_values`` as :func:`read`. CSV, Parquet and JSON Lines
    files are scanned by DuckDB (with the memory limit from ``MLWRIGHT_DUCKDB_MEMORY_LIMIT``
    and spilling to a temporary folder), so files larger than memory work; missing-value
    markers are resolved with SQL over the loaded table. Close the table when done, or use it
    as a context manager. ``table.missing_markers`` and ``table.kept_markers`` count the
    markers turned into missing and kept as values.

    Examples
    --------
    >>> with open_table("examples/credit-g/train.csv") as table:  # doctest: +SKIP
    ...     table.connection.execute(f"SELECT avg(age) FROM {table.ref}").fetchone()
    """
    rule = normalise_na_values(na_values)
    if nrows is not None and (not isinstance(nrows, int) or nrows < 0):
        raise DataError(f"nrows must be a non-negative whole number, got {nrows!r}.")
    if isinstance(source, Table):
        _refuse_rule_for_table(rule)
        return source
    if isinstance(source, pd.DataFrame):
        table = _table_from_frame(source, "the DataFrame", columns=columns, nrows=nrows)
        return _apply_explicit(table, rule, list(source.columns))
    if isinstance(source, str) and "://" in source:
        table = _open_url(source, query=query, columns=columns, nrows=nrows)
        return _apply_explicit(table, rule, table.columns)
    if not isinstance(source, (str, Path)):
        raise DataError(
            f"Cannot read data from a {type(source).__name__}. Pass a file path, an SQLAlchemy "
            "URL with a query, or a pandas DataFrame."
        )
    path = Path(source).expanduser()
    _check_path(path)
    kind = _kind_of(path)
    if query is not None and kind not in {"duckdb", "sqlite"}:
        raise DataError(
            f"A query was given but {path} is a {kind.upper()} file, not a database. Drop the "
            "query, or point at a DuckDB/SQLite database file or an SQLAlchemy URL."
        )
    if kind == "csv":
        return _load_csv(path, columns=columns, nrows=nrows, rule=rule)
    if kind == "excel":
        return _load_excel(path, columns=columns, nrows=nrows, rule=rule)
    loaders = {"parquet": _load_parquet, "json": _load_json, "arff": _load_arff}
    if kind == "duckdb":
        table = _open_duckdb_file(path, query=query, columns=columns, nrows=nrows)
    elif kind == "sqlite":
        table = _open_url(f"sqlite:///{path.resolve()}", query=query, columns=columns, nrows=nrows)
    else:
        table = loaders[kind](path, columns=columns, nrows=nrows)
    return _apply_explicit(table, rule, table.columns)


def _refuse_rule_for_table(rule: MarkerRule) -> None:
    if rule.explicit:
        raise ConfigError(
            "na_values was given with an open Table, whose data has already been read. Pass "
            "na_values when the table is opened: open_table(path, na_values=[...])."
        )


def _apply_explicit(table: Table, rule: MarkerRule, available: Sequence[str]) -> Table:
    """Explicit markers on a typed source (the automatic rule is for text files only)."""
    if rule.explicit or table.na_values is None:
        table.na_values = rule
    if not rule.explicit:
        return table
    try:
        rule.check_columns(available, table.source)
        missing, _kept = apply_markers_to_table(
            table.connection, table.name, rule, automatic=False, count_empty=False
        )
    except BaseException:
        table.close()
        raise
    for column, counts in missing.items():
        merged = table.missing_markers.setdefault(column, {})
        for marker, count in counts.items():
            merged[marker] = merged.get(marker, 0) + count
    table.refresh()
    return table
