"""Parquet and JSON Lines (scanned by DuckDB), and the in-memory sources: DataFrames, Excel
workbooks and ARFF files, loaded into a DuckDB table."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import arff
import duckdb
import pandas as pd

from mlwright.data._markers import MarkerRule
from mlwright.data._markers import apply_to_frame as apply_markers_to_frame
from mlwright.data._names import check_columns_exist
from mlwright.data._read_common import (
    _HEAD_BYTES,
    _check_duplicate_names,
    _create_table,
    _detect_encoding,
    _error_text,
    _read_head,
    _remove,
    _require_rows,
    _sql_string,
)
from mlwright.data._table import (
    TABLE_NAME,
    Table,
    new_connection,
    quote_identifier,
)
from mlwright.errors import ConfigError, DataError


def _load_scan(
    path: Path,
    scan: str,
    fmt: str,
    fix: str,
    *,
    columns: Sequence[str] | None,
    nrows: int | None,
) -> Table:
    connection, workdir = new_connection(path.stat().st_size)
    try:
        try:
            _create_table(connection, scan, columns=columns, nrows=nrows, source=str(path))
        except duckdb.Error as err:
            first = _error_text(err)
            raise DataError(f"{path} could not be read as {fmt}: {first}. {fix}") from err
        table = Table(connection, source=str(path), workdir=workdir)
    except BaseException:
        connection.close()
        _remove(workdir)
        raise
    _check_duplicate_names(table.columns, str(path))
    _require_rows(table, path)
    return table


def _load_parquet(path: Path, *, columns: Sequence[str] | None, nrows: int | None) -> Table:
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != b"PAR1":
        raise DataError(
            f"{path} has a Parquet extension but is not a Parquet file (it does not start with "
            "the Parquet magic bytes). Re-export it as Parquet, or rename it to match its "
            "content (.csv, .jsonl)."
        )
    scan = f"read_parquet({_sql_string(str(path))})"
    fix = "Check that the file was completely written; re-export it if it is truncated."
    return _load_scan(path, scan, "Parquet", fix, columns=columns, nrows=nrows)


def _load_json(path: Path, *, columns: Sequence[str] | None, nrows: int | None) -> Table:
    compressed = path.suffix.lower() in {".gz", ".gzip"}
    head = _read_head(path, compressed)
    if not head.strip():
        raise DataError(
            f"The data file {path} is empty (it holds only whitespace). Pass a file with at "
            "least one JSON record."
        )
    _detect_encoding(path, head, len(head) >= _HEAD_BYTES)
    scan = f"read_json({_sql_string(str(path))}, format = 'auto')"
    fix = (
        'Write one JSON object per line (JSON Lines), e.g. {"age": 41, "city": "Oslo"}, '
        "or one JSON array of such objects."
    )
    return _load_scan(path, scan, "JSON", fix, columns=columns, nrows=nrows)


def _table_from_frame(
    frame: pd.DataFrame,
    source: str,
    *,
    columns: Sequence[str] | None = None,
    nrows: int | None = None,
    missing_markers: dict[str, dict[str, int]] | None = None,
) -> Table:
    names = [str(column) for column in frame.columns]
    _check_duplicate_names(names, source)
    if columns is not None:
        check_columns_exist(columns, names, source)
        frame = frame.loc[:, list(columns)]
        names = list(columns)
    if nrows is not None:
        frame = frame.iloc[:nrows]
    prepared = _frame_for_duckdb(frame, names)
    connection, workdir = new_connection(int(prepared.memory_usage(deep=False).sum()))
    try:
        connection.register("__mlwright_frame", prepared)
        connection.execute(
            f"CREATE TABLE {quote_identifier(TABLE_NAME)} AS SELECT * FROM __mlwright_frame"
        )
        connection.unregister("__mlwright_frame")
        markers = missing_markers
        kept: dict[str, dict[str, int]] = {}
        if markers is None:
            markers = frame.attrs.get("missing_markers") or {}
            kept = frame.attrs.get("kept_markers") or {}
            if columns is not None:
                markers = {key: value for key, value in markers.items() if key in set(columns)}
                kept = {key: value for key, value in kept.items() if key in set(columns)}
        table = Table(
            connection,
            source=source,
            missing_markers={key: dict(value) for key, value in markers.items()},
            kept_markers={key: dict(value) for key, value in kept.items()},
            na_values=frame.attrs.get("na_values"),
            workdir=workdir,
        )
    except duckdb.Error as err:
        connection.close()
        _remove(workdir)
        raise DataError(
            f"The data from {source} could not be loaded into DuckDB: "
            f"{_error_text(err)}. Give each column values of one type."
        ) from err
    return table


def _frame_for_duckdb(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """A copy DuckDB can scan: string column names, one type per object column."""
    converted: dict[str, Any] = {}
    for position, name in enumerate(names):
        column = frame.iloc[:, position]
        if pd.api.types.is_object_dtype(column.dtype):
            non_missing = column.dropna()
            kinds = {type(value) for value in non_missing}
            if kinds and all(issubclass(kind, bool) for kind in kinds):
                column = column.astype("boolean")
            elif kinds and all(
                issubclass(kind, (int, float)) and not issubclass(kind, bool) for kind in kinds
            ):
                column = pd.to_numeric(column)
            elif kinds and not all(issubclass(kind, str) for kind in kinds):
                column = column.map(lambda value: None if _is_missing(value) else str(value))
                column = column.astype("str")
        elif isinstance(column.dtype, pd.CategoricalDtype):
            column = (
                column.astype("str")
                if column.cat.categories.dtype == object
                else (column.astype(column.cat.categories.dtype))
            )
        converted[name] = column.reset_index(drop=True)
    prepared = pd.DataFrame(converted)
    prepared.columns = names
    return prepared


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _load_excel(
    path: Path, *, columns: Sequence[str] | None, nrows: int | None, rule: MarkerRule
) -> Table:
    try:
        # deferred: openpyxl is the optional [excel] extra
        import openpyxl  # noqa: F401 - checked here to name the extra in the message
    except ImportError as err:
        raise ConfigError(
            f"Reading the Excel workbook {path} needs openpyxl, which is not installed. "
            "Install it with: pip install 'mlwright[excel]' (or save the sheet as CSV)."
        ) from err
    try:
        # header=None: pandas would rename a repeated header "x" to "x.1", hiding duplicates.
        sheet = pd.read_excel(
            path,
            sheet_name=0,
            engine="openpyxl",
            header=None,
            dtype=object,
            keep_default_na=False,
            na_values=[],
        )
    except Exception as err:  # openpyxl raises many unrelated types for broken workbooks
        raise DataError(
            f"{path} could not be read as an Excel workbook: {err}. Check that it is a valid "
            ".xlsx file (open and re-save it in Excel or LibreOffice), or export it as CSV."
        ) from err
    if sheet.empty:
        raise DataError(
            f"The first sheet of {path} is empty. Put the table (a header row, then the data) "
            "in the first sheet."
        )
    names = [
        f"column{index}" if _is_missing(value) or not str(value).strip() else str(value)
        for index, value in enumerate(sheet.iloc[0])
    ]
    _check_duplicate_names(names, str(path))
    raw = sheet.iloc[1:].reset_index(drop=True)
    raw.columns = names
    rule.check_columns(names, str(path))
    frame, counts, kept = apply_markers_to_frame(raw, rule)
    table = _table_from_frame(
        frame, str(path), columns=columns, nrows=nrows, missing_markers=counts
    )
    if columns is not None:
        kept = {name: value for name, value in kept.items() if name in set(columns)}
    table.kept_markers = kept
    table.na_values = rule
    _require_rows(table, path)
    return table


def _load_arff(path: Path, *, columns: Sequence[str] | None, nrows: int | None) -> Table:
    head = _read_head(path, compressed=False)
    encoding = _detect_encoding(path, head, len(head) >= _HEAD_BYTES)
    try:
        with path.open(encoding="latin-1" if encoding == "latin-1" else encoding) as handle:
            content = arff.load(handle)
    except arff.ArffException as err:
        raise DataError(
            f"{path} is not valid ARFF: {err}. Check the @relation, @attribute and @data "
            "sections (OpenML's format)."
        ) from err
    attributes = content["attributes"]
    names = [str(name) for name, _kind in attributes]
    _check_duplicate_names(names, str(path))
    rows = content["data"]
    frame = pd.DataFrame(rows, columns=names) if rows else pd.DataFrame(columns=names)
    counts: dict[str, dict[str, int]] = {}
    columns_data: dict[str, Any] = {}
    for name, kind in attributes:
        column = frame[name]
        missing = int(column.isna().sum())
        if missing:
            counts[name] = {"?": missing}
        if (
            isinstance(kind, list)
            or str(kind).upper() in {"STRING"}
            or str(kind).upper().startswith("DATE")
        ):
            # Nominal attributes are categories: keep their labels as strings.
            column = column.map(lambda value: None if _is_missing(value) else str(value)).astype(
                "str"
            )
        else:
            column = pd.to_numeric(column)
        columns_data[name] = column
    frame = pd.DataFrame(columns_data, columns=names)
    table = _table_from_frame(
        frame, str(path), columns=columns, nrows=nrows, missing_markers=counts
    )
    _require_rows(table, path)
    return table
