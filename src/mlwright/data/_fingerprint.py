"""A stable content fingerprint of a dataset, streamed from DuckDB so that any size works.

Each column is normalised (every number as a 64-bit float, so ``3``, ``3.0`` and an int64 3
agree; booleans as 0/1; dates and times as microseconds; text as UTF-8; NaN and NULL as one
"missing" mark) and fed, in row order, into a SHA-256 of its own; the fingerprint is the SHA-256
of the column names, the row count and the column digests. Columns are hashed separately so that
the result does not depend on how the rows were cut into batches: it depends on the column
names, the row order and the values, not on the file format the data came from. Hashing runs
over Arrow buffers (no per-row Python work), so ten million rows take seconds.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mlwright.data._read import open_table
from mlwright.data._table import Table

__all__ = ["fingerprint"]

_VERSION = "mlwright-fingerprint-v2"
_BATCH_ROWS = 1_000_000


class _ColumnHash:
    """Streaming digests of one column: values, text lengths, missing mask, and its kind.

    Each part has its own SHA-256 so that feeding the rows in batches of any size gives the
    same result as feeding them at once.
    """

    def __init__(self) -> None:
        self.values = hashlib.sha256()
        self.lengths = hashlib.sha256()
        self.mask = hashlib.sha256()
        self.kind = ""

    def digest(self) -> bytes:
        parts = (self.kind.encode(), self.values.digest(), self.lengths.digest())
        return b"".join(parts) + self.mask.digest()


def _feed(column: _ColumnHash, array: pa.Array) -> None:
    """Add one batch of one column to its digests."""
    values_hash = column.values
    kind = array.type
    if pa.types.is_dictionary(kind):
        array = array.dictionary_decode()
        kind = array.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        numbers = pc.cast(array, pa.float64())
        missing = pc.or_kleene(pc.is_null(numbers), pc.is_nan(numbers)).fill_null(True)
        filled = pc.if_else(missing, 0.0, numbers)
        # + 0.0 turns -0.0 into 0.0, which compares equal anyway.
        data = np.asarray(filled.to_numpy(zero_copy_only=False), dtype=np.float64) + 0.0
        column.kind = "number"
        values_hash.update(data.tobytes())
    elif pa.types.is_boolean(kind):
        missing = pc.is_null(array)
        data = np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), np.uint8)
        column.kind = "boolean"
        values_hash.update(data.tobytes())
    elif pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        stamps = pc.cast(pc.cast(array, pa.timestamp("us")), pa.int64())
        missing = pc.is_null(stamps)
        data = np.asarray(pc.fill_null(stamps, 0).to_numpy(zero_copy_only=False), np.int64)
        column.kind = "time"
        values_hash.update(data.tobytes())
    else:
        text = array if pa.types.is_large_string(kind) else pc.cast(array, pa.large_string())
        missing = pc.is_null(text)
        text = pc.if_else(missing, "", text)
        lengths = np.asarray(pc.binary_length(text).to_numpy(zero_copy_only=False), dtype=np.int64)
        offsets = np.frombuffer(text.buffers()[1], dtype=np.int64)[
            text.offset : text.offset + len(text) + 1
        ]
        payload = text.buffers()[2]
        column.kind = "text"
        column.lengths.update(lengths.tobytes())
        if len(offsets) and payload is not None:
            values_hash.update(memoryview(payload)[int(offsets[0]) : int(offsets[-1])])
    mask = np.asarray(missing.to_numpy(zero_copy_only=False), dtype=np.uint8)
    column.mask.update(mask.tobytes())


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
        with open_table(data) as table:
            return _fingerprint_table(table)
    raise TypeError(f"fingerprint() takes a DataFrame or a Table, got {type(data).__name__}")


def _fingerprint_table(table: Table) -> str:
    hashers = [_ColumnHash() for _ in table.columns]
    if table.columns and table.n_rows:
        # A cursor of its own, so that fingerprinting does not disturb other users of the
        # connection; a plain scan returns rows in insertion order (preserve_insertion_order).
        cursor = table.connection.cursor()
        try:
            reader = cursor.sql(f"SELECT * FROM {table.ref}").to_arrow_reader(_BATCH_ROWS)
            for batch in reader:
                for index, column_hash in enumerate(hashers):
                    _feed(column_hash, batch.column(index))
        finally:
            cursor.close()
    digest = hashlib.sha256()
    digest.update(_VERSION.encode())
    digest.update(json.dumps(table.columns, ensure_ascii=False).encode("utf-8"))
    digest.update(f"rows={table.n_rows}".encode())
    for column_hash in hashers:
        digest.update(column_hash.digest())
    return "sha256:" + digest.hexdigest()
