"""The DuckDB-backed :class:`Table`: data of any size, queried with SQL, converted on demand.

A Table owns one DuckDB connection holding one table (``Table.ref``). Large inputs live in a
database file inside a private temporary folder so that DuckDB can keep them on disk; small ones
stay in memory. Either way DuckDB's ``memory_limit`` comes from the settings and it spills to a
temporary folder, so a file larger than memory is scanned, never loaded whole into pandas.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from mlwright.config import get_settings
from mlwright.data._names import check_columns_exist

__all__ = [
    "TABLE_NAME",
    "Table",
    "fetch_one",
    "new_connection",
    "quote_identifier",
    "to_pandas_dtypes",
]

#: The relation every Table holds its data in.
TABLE_NAME = "mlwright_data"

# Inputs above this size get an on-disk database. Below it the table lives in memory, which loads
# a 1.5 GB CSV about 40% faster (benchmarks/data_ingest.py --on-disk compares); DuckDB keeps
# within memory_limit by evicting blocks of in-memory tables to the spill folder.
_ON_DISK_BYTES = 2 * 1024 * 1024 * 1024


def fetch_one(connection: duckdb.DuckDBPyConnection, query: str) -> tuple[Any, ...]:
    """The single row an aggregate query returns."""
    row = connection.execute(query).fetchone()
    if row is None:  # aggregates without GROUP BY always return a row
        raise RuntimeError(f"DuckDB returned no row for: {query[:200]}")
    return row


def quote_identifier(name: str) -> str:
    """Quote a column or table name for DuckDB SQL (any characters survive)."""
    return '"' + str(name).replace('"', '""') + '"'


def new_connection(size_hint: int = 0) -> tuple[duckdb.DuckDBPyConnection, Path]:
    """Open a DuckDB connection configured for mlwright, and its private temporary folder.

    Parameters
    ----------
    size_hint
        Size in bytes of the input; above 2 GB the database lives in a file on disk.
    """
    workdir = Path(tempfile.mkdtemp(prefix="mlwright-duckdb-"))
    database = str(workdir / "data.duckdb") if size_hint > _ON_DISK_BYTES else ":memory:"
    connection = duckdb.connect(database)
    settings = get_settings()
    spill = workdir / "spill"
    spill.mkdir()
    connection.execute("SET enable_progress_bar = false")
    connection.execute(f"SET memory_limit = '{settings.duckdb_memory_limit}'")
    connection.execute(f"SET temp_directory = '{spill.as_posix()}'")
    # Row order is part of a dataset's identity (fingerprint, samples, pandas conversion).
    connection.execute("SET preserve_insertion_order = true")
    return connection, workdir


def to_pandas_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """Give a frame fetched from DuckDB mlwright's dtype conventions.

    Integers become ``int64`` when complete and ``float64`` when they hold missing values
    (every model library accepts NaN in floats, few accept pandas' nullable integers); text is
    pandas' ``str`` dtype; booleans stay ``bool`` (``boolean`` when they hold missing values);
    decimals become ``float64``.
    """
    converted: dict[str, Any] = {}
    for position, name in enumerate(frame.columns):
        column = frame.iloc[:, position]
        dtype = column.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            converted[name] = column.astype("str")
        elif pd.api.types.is_bool_dtype(dtype):
            converted[name] = (
                column.astype("boolean") if column.isna().any() else column.astype(bool)
            )
        elif pd.api.types.is_integer_dtype(dtype):
            has_missing = bool(column.isna().any())
            converted[name] = column.astype("float64" if has_missing else "int64")
        elif pd.api.types.is_float_dtype(dtype):
            converted[name] = column.astype("float64")
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            converted[name] = column
        elif pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
            converted[name] = _object_to_best(column)
        else:
            converted[name] = column
    result = pd.DataFrame(converted, index=frame.index)
    result.columns = list(frame.columns)
    result.attrs = dict(frame.attrs)
    return result


def _object_to_best(column: pd.Series) -> pd.Series:
    """Strings to ``str``; DECIMAL values (fetched as Python Decimal objects) to float64."""
    non_missing = column.dropna()
    if len(non_missing) and non_missing.map(lambda value: isinstance(value, str)).all():
        return column.astype("str")
    if len(non_missing) == 0:
        return column.astype("str")
    sample = non_missing.iloc[0]
    if isinstance(sample, (int, float, np.number)) or type(sample).__name__ == "Decimal":
        try:
            return column.astype("float64")
        except (TypeError, ValueError):
            pass
    return column.map(lambda value: value if value is None else str(value)).astype("str")


class Table:
    """Tabular data held by DuckDB, for inputs of any size.

    Use :func:`mlwright.data.open_table` to create one. Query it with SQL through
    ``table.connection`` and ``table.ref``; convert (part of) it with :meth:`to_pandas` or
    :meth:`sample`. Close it (or use it as a context manager) to free its temporary files.

    Attributes
    ----------
    connection
        The DuckDB connection that holds the data.
    name
        Name of the relation holding the data.
    ref
        The SQL-quoted relation name, to use in queries: ``f"SELECT count(*) FROM {t.ref}"``.
    source
        What the data was read from (a path, a masked SQL URL, "DataFrame").
    columns
        Column names in data order, exactly as in the source.
    n_rows
        Number of rows.
    missing_markers
        ``{column: {marker: count}}``: the cells each missing-value marker turned into missing
        while reading (``""`` counts empty cells).
    kept_markers
        ``{column: {marker: count}}``: the cells of each marker kept as values (the column
        holds text, so ``?`` or ``-`` is one of its values; see :func:`mlwright.data.read`).
    na_values
        The marker rule the data was read with (None: the automatic rule everywhere).
    column_types
        ``{column: DuckDB type name}``.
    """

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        *,
        source: str,
        missing_markers: dict[str, dict[str, int]] | None = None,
        kept_markers: dict[str, dict[str, int]] | None = None,
        na_values: Any = None,
        workdir: Path | None = None,
        name: str = TABLE_NAME,
    ) -> None:
        self.connection = connection
        self.name = name
        self.ref = quote_identifier(name)
        self.source = source
        self.missing_markers = missing_markers or {}
        self.kept_markers = kept_markers or {}
        self.na_values = na_values
        self._workdir = workdir
        self.refresh()
        self._closed = False

    def refresh(self) -> None:
        """Re-read the column names, types and row count (after the table was altered)."""
        connection = self.connection
        description = connection.execute(f"SELECT * FROM {self.ref} LIMIT 0").description
        self.columns: list[str] = [column[0] for column in description]
        self.column_types: dict[str, str] = {
            row[0]: row[1] for row in connection.execute(f"DESCRIBE {self.ref}").fetchall()
        }
        self.n_rows: int = int(fetch_one(connection, f"SELECT count(*) FROM {self.ref}")[0])

    def __repr__(self) -> str:
        return f"Table(source={self.source!r}, n_rows={self.n_rows}, n_columns={len(self.columns)})"

    def __enter__(self) -> Table:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - safety net for tables never closed
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass

    def _select_list(self, columns: list[str] | None) -> str:
        if columns is None:
            return "*"
        check_columns_exist(columns, self.columns, self.source)
        return ", ".join(quote_identifier(column) for column in columns)

    def to_pandas(self, columns: list[str] | None = None, limit: int | None = None) -> pd.DataFrame:
        """Fetch the data (or some columns, or the first ``limit`` rows) as a DataFrame.

        The frame's ``attrs["missing_markers"]`` and ``attrs["kept_markers"]`` hold the marker
        counts, ``attrs["na_values"]`` the rule it was read with; dtypes follow
        :func:`mlwright.data.read`.
        """
        query = f"SELECT {self._select_list(columns)} FROM {self.ref}"
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        return self._fetch(query, columns)

    def sample(self, n: int, seed: int = 0) -> pd.DataFrame:
        """A deterministic sample of ``n`` rows (all rows if fewer), in their original order."""
        if n >= self.n_rows:
            return self.to_pandas()
        # Ranking rows by a seeded hash of their position is deterministic for any thread count,
        # unlike DuckDB's reservoir sampling.
        query = (
            f"SELECT * EXCLUDE (__mlwright_position) FROM ("
            f"SELECT *, rowid AS __mlwright_position FROM {self.ref} "
            f"ORDER BY hash(rowid + {int(seed) * 1_000_003}) LIMIT {int(n)}) "
            "ORDER BY __mlwright_position"
        )
        return self._fetch(query, None)

    def _fetch(self, query: str, columns: list[str] | None) -> pd.DataFrame:
        frame = to_pandas_dtypes(self.connection.execute(query).df())
        wanted = set(columns) if columns is not None else None
        for key, found in (
            ("missing_markers", self.missing_markers),
            ("kept_markers", self.kept_markers),
        ):
            frame.attrs[key] = {
                column: dict(counts)
                for column, counts in found.items()
                if wanted is None or column in wanted
            }
        rule = self.na_values
        frame.attrs["na_values"] = rule.to_json() if hasattr(rule, "to_json") else rule
        frame.attrs["source"] = self.source
        return frame

    def close(self) -> None:
        """Close the connection and delete the temporary files."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        self.connection.close()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
