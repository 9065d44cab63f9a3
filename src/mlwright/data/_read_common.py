"""What every reader shares: recognising a file's format, checking its path, creating the table,
and turning third-party errors into messages."""

from __future__ import annotations

import codecs
import difflib
import gzip
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import duckdb

from mlwright.data._names import check_columns_exist, preview_names
from mlwright.data._table import (
    TABLE_NAME,
    Table,
    quote_identifier,
)
from mlwright.errors import DataError

_CSV_EXTENSIONS = {".csv", ".tsv", ".tab", ".txt", ".dat", ".data"}


_PARQUET_EXTENSIONS = {".parquet", ".pq", ".parq"}


_JSON_EXTENSIONS = {".jsonl", ".ndjson", ".json"}


_EXCEL_EXTENSIONS = {".xlsx", ".xlsm"}


_ARFF_EXTENSIONS = {".arff"}


_DUCKDB_EXTENSIONS = {".duckdb", ".ddb", ".db"}


_SQLITE_EXTENSIONS = {".sqlite", ".sqlite3"}


SUPPORTED_FORMATS = (
    "CSV/TSV (.csv, .tsv, .txt, optionally .gz), Parquet (.parquet), JSON Lines (.jsonl, "
    ".ndjson, .json), Excel (.xlsx), ARFF (.arff), a DuckDB or SQLite database file with a "
    "query, or an SQLAlchemy URL with a query"
)


# Bytes looked at to sniff encoding, delimiter and header.
_HEAD_BYTES = 256 * 1024


_MAGIC = {
    b"PAR1": "a Parquet file",
    b"PK\x03\x04": "a ZIP archive (an .xlsx workbook is one)",
    b"\x1f\x8b": "a gzip-compressed file",
    b"SQLite format 3\x00": "an SQLite database",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"\x7fELF": "an executable program",
}


def _check_path(path: Path) -> None:
    if path.is_dir():
        raise DataError(
            f"{path} is a folder, not a data file. Pass the path of a file inside it "
            f"(supported: {SUPPORTED_FORMATS})."
        )
    if not path.exists():
        parent = path.parent if str(path.parent) else Path(".")
        close: list[str] = []
        if parent.is_dir():
            close = difflib.get_close_matches(
                path.name, [child.name for child in parent.iterdir()], n=3, cutoff=0.6
            )
        hint = f" Did you mean {', '.join(str(parent / name) for name in close)}?" if close else ""
        raise DataError(
            f"The data file {path} does not exist (looked in {parent.resolve()}).{hint} Check "
            "the path, or run the command from the folder that holds the file."
        )
    if path.stat().st_size == 0:
        raise DataError(
            f"The data file {path} is empty (0 bytes). Pass a file with a header row and at "
            "least one data row; if it is being written by another program, wait until it is "
            "finished."
        )


def _kind_of(path: Path) -> str:
    suffixes = [suffix.lower() for suffix in path.suffixes]
    suffix = suffixes[-1] if suffixes else ""
    if suffix in {".gz", ".gzip"} and len(suffixes) >= 2:
        suffix = suffixes[-2]
        if suffix in _CSV_EXTENSIONS:
            return "csv"
        if suffix in _JSON_EXTENSIONS:
            return "json"
    if suffix in _CSV_EXTENSIONS:
        return "csv"
    if suffix in _PARQUET_EXTENSIONS:
        return "parquet"
    if suffix in _JSON_EXTENSIONS:
        return "json"
    if suffix in _EXCEL_EXTENSIONS:
        return "excel"
    if suffix in _ARFF_EXTENSIONS:
        return "arff"
    if suffix in _SQLITE_EXTENSIONS:
        return "sqlite"
    if suffix in _DUCKDB_EXTENSIONS:
        with path.open("rb") as handle:
            head = handle.read(16)
        return "sqlite" if head.startswith(b"SQLite format 3\x00") else "duckdb"
    if suffix == ".xls":
        raise DataError(
            f"{path} is an old-style Excel .xls workbook, which mlwright does not read. Open it "
            "in Excel or LibreOffice and save it as .xlsx or .csv, then pass that file."
        )
    raise DataError(
        f"mlwright does not know how to read {path}: the extension {suffix or '(none)'!r} is "
        f"not a supported format. Supported: {SUPPORTED_FORMATS}. Rename the file if its "
        "content is one of these, or convert it."
    )


def _sql_string(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _read_head(path: Path, compressed: bool) -> bytes:
    try:
        if compressed:
            with gzip.open(path, "rb") as handle:
                return handle.read(_HEAD_BYTES)
        with path.open("rb") as handle:
            return handle.read(_HEAD_BYTES)
    except (OSError, EOFError) as err:
        raise DataError(
            f"Could not read {path}: {err}. If it is compressed, check that the archive is "
            "complete; otherwise check the file's permissions."
        ) from err


def _detect_encoding(path: Path, head: bytes, truncated: bool) -> str:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    for magic, description in _MAGIC.items():
        if head.startswith(magic):
            raise DataError(_binary_message(path, description))
    if b"\x00" in head:
        even_zeros = head[0::2].count(0)
        odd_zeros = head[1::2].count(0)
        half = max(len(head) // 2, 1)
        if odd_zeros > 0.3 * half and even_zeros < 0.05 * half:
            return "utf-16"  # little-endian without a byte-order mark
        raise DataError(_binary_message(path, "binary content (NUL bytes)"))
    control = sum(1 for byte in head if byte < 9 or 13 < byte < 32)
    if control > max(2, len(head) // 100):
        raise DataError(_binary_message(path, "binary content (control bytes)"))
    sample = head[:-4] if truncated else head
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def _binary_message(path: Path, description: str) -> str:
    return (
        f"{path} is not a text data file: it looks like {description}. mlwright reads "
        f"{SUPPORTED_FORMATS}. Export the data to one of these formats, or pass the file with "
        "the extension that matches its content."
    )


def _check_duplicate_names(names: Sequence[str], source: str) -> None:
    seen: dict[str, str] = {}
    duplicates: list[str] = []
    for name in names:
        key = str(name).lower()
        if key in seen:
            pair = f"{seen[key]!r} and {name!r}" if seen[key] != name else f"{name!r}"
            if pair not in duplicates:
                duplicates.append(pair)
        else:
            seen[key] = str(name)
    if duplicates:
        raise DataError(
            f"{source} has duplicate column names: {', '.join(duplicates)} (names are compared "
            "ignoring case, as SQL does). Rename the columns so each name is unique, then read "
            "the data again."
        )


def _create_table(
    connection: duckdb.DuckDBPyConnection,
    scan: str,
    *,
    columns: Sequence[str] | None,
    nrows: int | None,
    source: str,
) -> None:
    if columns is not None:
        available = [
            column[0] for column in connection.execute(f"SELECT * FROM {scan} LIMIT 0").description
        ]
        check_columns_exist(columns, available, source)
        select = ", ".join(quote_identifier(column) for column in columns)
    else:
        select = "*"
    limit = f" LIMIT {int(nrows)}" if nrows is not None else ""
    connection.execute(f"DROP TABLE IF EXISTS {quote_identifier(TABLE_NAME)}")
    connection.execute(
        f"CREATE TABLE {quote_identifier(TABLE_NAME)} AS SELECT {select} FROM {scan}{limit}"
    )


def _require_rows(table: Table, path: Path | str) -> None:
    if table.n_rows == 0:
        table.close()
        raise DataError(
            f"{path} has a header ({preview_names(table.columns)}) but no data rows. Pass a "
            "file with at least one row of data."
        )


def _remove(workdir: Path) -> None:
    shutil.rmtree(workdir, ignore_errors=True)


def _error_text(err: Exception) -> str:
    """The first line of a DuckDB error without its category prefix or final period."""
    text = str(err).strip()
    first = text.splitlines()[0] if text else type(err).__name__
    return re.sub(r"^[A-Za-z ]*Error: ", "", first).rstrip(". ")


def _first_line(err: Exception) -> str:
    original = getattr(err, "orig", None)
    text = str(original if original is not None else err).strip()
    return text.splitlines()[0] if text else type(err).__name__
