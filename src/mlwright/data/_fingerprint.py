"""A stable content fingerprint of a dataset, computed by DuckDB so that any size works.

Each value is normalised first (every number as the shortest text of its 64-bit float, so
``3``, ``3.0`` and an int64 3 agree; booleans as ``true``/``false``; dates and times in ISO
form; NaN and NULL as one "missing" mark). Rows are hashed (MD5 of the normalised row), the row
hashes of each block of 65,536 consecutive rows are hashed together in order, and SHA-256 runs
over the column names and the block hashes in order. The result depends on the column names,
the row order and the values, not on the file format the data came from.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pandas as pd

from mlwright.data._table import Table, quote_identifier

__all__ = ["fingerprint"]

_VERSION = "mlwright-fingerprint-v1"
_BLOCK_ROWS = 65_536
_NUMERIC_TYPES = (
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
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
)


def _normalised(column: str, duckdb_type: str) -> str:
    identifier = quote_identifier(column)
    kind = duckdb_type.upper()
    if kind.startswith(_NUMERIC_TYPES):
        as_double = f"CAST({identifier} AS DOUBLE)"
        value = f"CASE WHEN isnan({as_double}) THEN NULL ELSE CAST({as_double} AS VARCHAR) END"
    elif kind == "BOOLEAN":
        value = f"CASE WHEN {identifier} THEN 'true' ELSE 'false' END"
    elif kind.startswith(("TIMESTAMP", "DATE")):
        value = f"strftime(CAST({identifier} AS TIMESTAMP), '%Y-%m-%dT%H:%M:%S.%f')"
    else:
        value = f"CAST({identifier} AS VARCHAR)"
    # 'v' marks a value and 'n' a missing one, so that no value can pass for a missing one.
    return f"coalesce('v' || ({value}), 'n')"


def fingerprint(data: Any) -> str:
    """A content hash of a dataset: ``"sha256:<hex>"``.

    Parameters
    ----------
    data
        A pandas DataFrame or a :class:`~mlwright.data.Table`.

    Returns
    -------
    str
        The same for the same column names and rows in the same order, whether the data was
        read from CSV, Parquet or any other source (numbers compare by value: ``3`` equals
        ``3.0``; NaN equals missing).

    Examples
    --------
    >>> fingerprint(pd.DataFrame({"a": [1, 2]})) == fingerprint(pd.DataFrame({"a": [1.0, 2.0]}))
    True
    """
    if isinstance(data, Table):
        return _fingerprint_table(data)
    if isinstance(data, pd.DataFrame):
        from mlwright.data._read import open_table

        with open_table(data) as table:
            return _fingerprint_table(table)
    raise TypeError(f"fingerprint() takes a DataFrame or a Table, got {type(data).__name__}")


def _fingerprint_table(table: Table) -> str:
    digest = hashlib.sha256()
    digest.update(_VERSION.encode())
    digest.update(json.dumps(table.columns, ensure_ascii=False).encode("utf-8"))
    digest.update(f"rows={table.n_rows}".encode())
    if table.columns and table.n_rows:
        row = " || chr(31) || ".join(
            _normalised(column, table.column_types[column]) for column in table.columns
        )
        query = (
            f"SELECT block, md5(string_agg(row_hash, '' ORDER BY position)) FROM ("
            f"SELECT rowid AS position, rowid // {_BLOCK_ROWS} AS block, md5({row}) AS row_hash "
            f"FROM {table.ref}) GROUP BY block ORDER BY block"
        )
        for _block, block_hash in table.connection.execute(query).fetchall():
            digest.update(block_hash.encode())
    return "sha256:" + digest.hexdigest()
