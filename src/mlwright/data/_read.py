"""Reading data from files, DuckDB databases and SQL URLs into DuckDB (Table) or pandas.

Every reader loads into a DuckDB table (see :mod:`mlwright.data._table`), so CSV, Parquet and JSON
Lines files of any size are scanned by DuckDB and never parsed whole by pandas. Third-party
errors are translated here, at the boundary, into :class:`~mlwright.errors.DataError` messages
that name the file, the line or column, and the fix.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import gzip
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from mlwright.data._markers import (
    MISSING_MARKERS,
    MarkerRule,
    normalise_na_values,
)
from mlwright.data._markers import apply_to_frame as apply_markers_to_frame
from mlwright.data._markers import apply_to_table as apply_markers_to_table
from mlwright.data._names import check_columns_exist, preview_names
from mlwright.data._table import (
    TABLE_NAME,
    Table,
    fetch_one,
    new_connection,
    quote_identifier,
    to_pandas_dtypes,
)
from mlwright.errors import ConfigError, DataError

__all__ = [
    "MISSING_MARKERS",
    "MarkerRule",
    "SUPPORTED_FORMATS",
    "open_table",
    "read",
]


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
# Below this size DuckDB looks at every row to choose column types; above, at a sample (a value
# that does not fit the sampled type is handled by re-reading that column with a wider type).
_FULL_SNIFF_BYTES = 8 * 1024 * 1024
_DELIMITERS = (",", "\t", ";", "|")
_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")
_DECIMAL_COMMA = re.compile(r"\s*[-+]?\d+,\d+\s*")
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


# --------------------------------------------------------------------------------------------
# public entry points


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


# --------------------------------------------------------------------------------------------
# paths and formats


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


# --------------------------------------------------------------------------------------------
# CSV


class _Dialect:
    def __init__(self, encoding: str, delimiter: str, header: list[str] | None, compressed: bool):
        self.encoding = encoding
        self.delimiter = delimiter
        self.header = header
        self.compressed = compressed
        self.decimal_comma = False

    def options(self) -> str:
        delimiter = self.delimiter.replace("'", "''")
        parts = [
            f"delim = '{delimiter}'",
            "quote = '\"'",
            "escape = '\"'",
            "skip = 0",
            f"header = {'true' if self.header is not None else 'false'}",
            f"encoding = '{self.encoding}'",
        ]
        if self.compressed:
            parts.append("compression = 'gzip'")
        if self.decimal_comma:
            parts.append("decimal_separator = ','")
        if self.header is not None:
            names = ", ".join(_sql_string(name) for name in self.header)
            parts.append(f"names = [{names}]")
        return ", ".join(parts)


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


def _decode_head(head: bytes, encoding: str, truncated: bool) -> list[str]:
    codec = (
        "utf-16"
        if encoding == "utf-16" and head[:2] in (b"\xff\xfe", b"\xfe\xff")
        else ("utf-16-le" if encoding == "utf-16" else encoding)
    )
    text = head.decode(codec, errors="ignore").lstrip("\ufeff")
    lines = text.splitlines()
    if truncated and lines:
        lines = lines[:-1]  # the last line may be cut in the middle
    return [line for line in lines if line.strip()][:50]


def _sniff_delimiter(lines: list[str], preferred: str | None) -> str:
    best: tuple[float, int, int] | None = None
    chosen = preferred or ","
    for rank, delimiter in enumerate(_DELIMITERS):
        counts = [len(row) for row in csv.reader(lines, delimiter=delimiter, quotechar='"')]
        if not counts:
            continue
        mode = max(set(counts), key=counts.count)
        if mode < 2:
            continue
        share = counts.count(mode) / len(counts)
        bonus = 1 if delimiter == preferred else 0
        score = (share, bonus, -rank)
        if best is None or score > best:
            best = score
            chosen = delimiter
    return chosen


def _sniff_csv(path: Path) -> _Dialect:
    compressed = path.suffix.lower() in {".gz", ".gzip"}
    head = _read_head(path, compressed)
    size = len(head)
    truncated = size >= _HEAD_BYTES
    if not head.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise DataError(
            f"The data file {path} is empty (it holds only whitespace). Pass a file with a "
            "header row and at least one data row."
        )
    encoding = _detect_encoding(path, head, truncated)
    lines = _decode_head(head, encoding, truncated)
    inner_suffix = Path(path.stem).suffix.lower() if compressed else path.suffix.lower()
    preferred = "\t" if inner_suffix in {".tsv", ".tab"} else None
    delimiter = _sniff_delimiter(lines, preferred)
    first = next(csv.reader(lines[:1], delimiter=delimiter, quotechar='"'), [])
    has_header = bool(first) and not any(_NUMBER.fullmatch(field) for field in first if field)
    header = list(first) if has_header else None
    if header is not None:
        header = [name if name.strip() else f"column{index}" for index, name in enumerate(header)]
        _check_duplicate_names(header, str(path))
    dialect = _Dialect(encoding, delimiter, header, compressed)
    # Semicolon-separated files usually come from locales that write 1,5 for one and a half.
    if delimiter == ";":
        rows = list(csv.reader(lines[1:], delimiter=";", quotechar='"'))
        dialect.decimal_comma = any(
            _DECIMAL_COMMA.fullmatch(field) for row in rows for field in row
        )
    return dialect


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


def _load_csv(
    path: Path, *, columns: Sequence[str] | None, nrows: int | None, rule: MarkerRule
) -> Table:
    dialect = _sniff_csv(path)
    connection, workdir = new_connection(path.stat().st_size)
    try:
        sampled = path.stat().st_size > _FULL_SNIFF_BYTES

        # Only the empty cell is NULL here: markers arrive as text, and apply_markers_to_table
        # decides per column (with SQL over the loaded table) which of them are missing.
        def scan(types: dict[str, str]) -> str:
            type_option = ""
            if types:
                mapping = ", ".join(f"{_sql_string(k)}: '{v}'" for k, v in types.items())
                type_option = f", types = {{{mapping}}}"
            return (
                f"read_csv({_sql_string(str(path))}, {dialect.options()}, nullstr = [''],"
                " auto_type_candidates = ['BIGINT', 'DOUBLE', 'VARCHAR'],"
                f" sample_size = {20480 if sampled else -1}{type_option})"
            )

        types: dict[str, str] = {}
        integer_candidates: list[str] = []
        if sampled:
            # DuckDB's CSV reader rounds a decimal such as 1.5 that turns up after the sampled
            # rows in a column sniffed as BIGINT. Such columns are read as DOUBLE and narrowed
            # back to BIGINT afterwards when every value is a whole number.
            try:
                sniffed = connection.execute(f"DESCRIBE SELECT * FROM {scan({})}").fetchall()
            except duckdb.Error as err:
                ragged = _find_ragged_line(path, dialect)
                raise DataError(ragged or _csv_error_message(path, err)) from err
            integer_candidates = [row[0] for row in sniffed if row[1] == "BIGINT"]
            types = dict.fromkeys(integer_candidates, "DOUBLE")
        for _attempt in range(200):
            try:
                _create_table(
                    connection, scan(types), columns=columns, nrows=nrows, source=str(path)
                )
                break
            except duckdb.ConversionException as err:
                widened = _widen_type(str(err), types)
                if widened is None:
                    raise DataError(_csv_error_message(path, err)) from err
            except duckdb.Error as err:
                ragged = _find_ragged_line(path, dialect)
                raise DataError(ragged or _csv_error_message(path, err)) from err
        else:
            raise DataError(
                f"{path} could not be read: the types of its columns kept changing beyond the "
                "sampled rows. Convert it to Parquet, or give every column values of one type."
            )
        _narrow_whole_numbers(connection, [c for c in integer_candidates if types[c] == "DOUBLE"])
        loaded = [row[0] for row in connection.execute(f"DESCRIBE {TABLE_NAME}").fetchall()]
        rule.check_columns([*loaded, *(dialect.header or [])], str(path))
        missing, kept = apply_markers_to_table(
            connection, TABLE_NAME, rule, automatic=True, decimal_comma=dialect.decimal_comma
        )
        table = Table(
            connection,
            source=str(path),
            workdir=workdir,
            missing_markers=missing,
            kept_markers=kept,
            na_values=rule,
        )
    except BaseException:
        connection.close()
        _remove(workdir)
        raise
    _require_rows(table, path)
    return table


def _narrow_whole_numbers(connection: duckdb.DuckDBPyConnection, candidates: list[str]) -> None:
    """Turn DOUBLE columns holding only whole numbers (exactly representable) into BIGINT."""
    present = {
        row[0]: row[1]
        for row in connection.execute(f"DESCRIBE {quote_identifier(TABLE_NAME)}").fetchall()
    }
    candidates = [column for column in candidates if present.get(column) == "DOUBLE"]
    if not candidates:
        return
    checks = ", ".join(
        f"count_if({quote_identifier(c)} <> floor({quote_identifier(c)}) OR "
        f"abs({quote_identifier(c)}) >= 9007199254740992)"
        for c in candidates
    )
    counts = fetch_one(connection, f"SELECT {checks} FROM {quote_identifier(TABLE_NAME)}")
    for column, not_whole in zip(candidates, counts, strict=True):
        if not_whole == 0:
            connection.execute(
                f"ALTER TABLE {quote_identifier(TABLE_NAME)} ALTER {quote_identifier(column)} "
                "TYPE BIGINT"
            )


def _find_ragged_line(path: Path, dialect: _Dialect) -> str | None:
    """Find the first record whose field count differs from the first record's.

    Only called after DuckDB failed, to name the line in the message; DuckDB's own sniffer
    reports ragged rows of small files as an undetectable dialect.
    """
    codec = {"utf-16": "utf-16"}.get(dialect.encoding, dialect.encoding)
    opener = gzip.open if dialect.compressed else open
    start = 1
    try:
        with opener(path, "rt", encoding=codec, errors="replace", newline="") as handle:
            reader = csv.reader(handle, delimiter=dialect.delimiter, quotechar='"', strict=True)
            expected: int | None = None
            while True:
                start = reader.line_num + 1
                record = next(reader, None)
                if record is None:
                    return None
                if not record:
                    continue
                if expected is None:
                    expected = len(record)
                    continue
                if len(record) != expected:
                    shown = dialect.delimiter.join(record)[:120]
                    return (
                        f"{path} has ragged rows: line {start} ({shown!r}) has {len(record)} "
                        f"fields but the first row has {expected}. Every row must have the same "
                        "number of fields: fix or remove that line, or quote fields that "
                        "contain the delimiter."
                    )
    except csv.Error as err:
        return (
            f"{path} could not be parsed as CSV: the record starting on line {start} has a "
            f"quoting error ({err}); most likely a quote is opened but never closed. Close the "
            'quote, or double quote characters inside quoted fields ("").'
        )
    except (OSError, UnicodeError):
        return None


def _widen_type(message: str, types: dict[str, str]) -> str | None:
    """After a value did not fit the sampled type, read that column with a wider type."""
    match = re.search(r'converting column "(.*?)"\. Could not convert string "(.*?)"', message)
    if not match:
        return None
    column, value = match.group(1), match.group(2)
    current = types.get(column)
    if current == "VARCHAR":
        return None
    wider = "DOUBLE" if current is None and _NUMBER.fullmatch(value) else "VARCHAR"
    types[column] = wider
    return wider


def _csv_error_message(path: Path, err: Exception) -> str:
    text = str(err)
    line = re.search(r"CSV Error on Line: (\d+)", text)
    original = re.search(r"Original Line: ?(.*)", text)
    expected = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
    where = f" on line {line.group(1)}" if line else ""
    shown = f" ({original.group(1)[:120]!r})" if original else ""
    if expected:
        return (
            f"{path} has ragged rows: line {line.group(1) if line else '?'}{shown} has "
            f"{expected.group(2)} fields but the header has {expected.group(1)}. Every row "
            "must have the same number of fields: fix or remove that line, or quote fields "
            "that contain the delimiter."
        )
    if "unterminated quote" in text.lower() or "quote" in text.lower() and line:
        return (
            f"{path} could not be parsed as CSV{where}{shown}: a quoted field is not closed. "
            'Close the quote or double the quote character inside the field ("").'
        )
    first = _error_text(err)
    return (
        f"{path} could not be read as CSV{where}{shown}: {first}. Check that the file is "
        "comma-, semicolon-, tab- or pipe-separated text with one record per line."
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
    import shutil

    shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Parquet and JSON


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


# --------------------------------------------------------------------------------------------
# in-memory frames: DataFrames, Excel, ARFF, SQL results


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
    import arff

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


# --------------------------------------------------------------------------------------------
# databases


def _open_duckdb_file(
    path: Path, *, query: str | None, columns: Sequence[str] | None, nrows: int | None
) -> Table:
    connection, workdir = new_connection(path.stat().st_size)
    try:
        home = fetch_one(connection, "SELECT current_database()")[0]
        try:
            connection.execute(f"ATTACH {_sql_string(str(path))} AS source_db (READ_ONLY)")
        except duckdb.Error as err:
            raise DataError(
                f"{path} could not be opened as a DuckDB database: {_error_text(err)}. "
                "Check that it is a DuckDB file written by a compatible DuckDB version."
            ) from err
        connection.execute("USE source_db")
        if query is None:
            query = _default_query(
                [row[0] for row in connection.execute("SHOW TABLES").fetchall()], str(path)
            )
        target = f"{quote_identifier(home)}.main.{quote_identifier(TABLE_NAME)}"
        try:
            connection.execute(f"CREATE TABLE {target} AS {query}")
        except duckdb.Error as err:
            raise DataError(
                f"The query {query!r} failed on the DuckDB database {path}: "
                f"{_error_text(err)}. Fix the SQL (list the tables with SHOW TABLES)."
            ) from err
        connection.execute(f"USE {quote_identifier(home)}")
        connection.execute("DETACH source_db")
        table = Table(connection, source=f"{path} (query: {query})", workdir=workdir)
    except BaseException:
        connection.close()
        _remove(workdir)
        raise
    return _restrict(table, columns, nrows)


def _default_query(tables: list[str], source: str) -> str:
    if len(tables) == 1:
        return f"SELECT * FROM {quote_identifier(tables[0])}"
    listed = ", ".join(tables) if tables else "none"
    raise DataError(
        f"{source} is a database; say which data to read with a query (--query / query=), e.g. "
        f'"SELECT * FROM {tables[0] if tables else "my_table"}". Its tables: {listed}.'
    )


def _restrict(table: Table, columns: Sequence[str] | None, nrows: int | None) -> Table:
    _check_duplicate_names(table.columns, table.source)
    if columns is None and nrows is None:
        _require_rows(table, table.source)
        return table
    if columns is not None:
        check_columns_exist(columns, table.columns, table.source)
        select = ", ".join(quote_identifier(column) for column in columns)
    else:
        select = "*"
    limit = f" LIMIT {int(nrows)}" if nrows is not None else ""
    connection = table.connection
    connection.execute(
        f"CREATE TABLE __mlwright_restricted AS SELECT {select} FROM {table.ref}{limit}"
    )
    connection.execute(f"DROP TABLE {table.ref}")
    connection.execute(f"ALTER TABLE __mlwright_restricted RENAME TO {table.ref}")
    restricted = Table(connection, source=table.source, workdir=table._workdir)
    table._closed = True  # ownership of the connection moved to the restricted table
    _require_rows(restricted, restricted.source)
    return restricted


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is masked by pattern instead
        return re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", url)


def _open_url(
    url: str, *, query: str | None, columns: Sequence[str] | None, nrows: int | None
) -> Table:
    masked = mask_url(url)
    if url.startswith("duckdb:///"):
        path = Path(url.removeprefix("duckdb:///"))
        _check_path(path)
        return _open_duckdb_file(path, query=query, columns=columns, nrows=nrows)
    if url.startswith(("http://", "https://", "s3://", "gs://")):
        raise DataError(
            f"mlwright does not download data ({masked}). Download the file first and pass its "
            "local path."
        )
    import sqlalchemy
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    fix = (
        "Check the host, port, database name, user and password, and that the server accepts "
        "connections from this machine."
    )
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except ArgumentError as err:
        raise DataError(
            f"{masked} is not a valid SQLAlchemy URL: {err}. Use the form "
            "dialect+driver://user:password@host:port/database, e.g. sqlite:///shop.db."
        ) from err
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            database_path = Path(database)
            if database_path.is_file():
                with database_path.open("rb") as handle:
                    if handle.read(16) != b"SQLite format 3\x00":
                        raise DataError(
                            f"Cannot read from {masked}: {database} is not an SQLite database "
                            "file. Check the path, or read the file by its own format."
                        )
            if not Path(database).is_file():
                raise DataError(
                    f"Cannot read from {masked}: the SQLite database file {database} does not "
                    "exist. Check the path (sqlite:///relative/path.db or "
                    "sqlite:////absolute/path.db)."
                )
            # Read-only, so that a mistyped path never creates an empty database.
            url = f"sqlite:///file:{Path(database).resolve()}?mode=ro&uri=true"
        fix = "Check that the file is an SQLite database and that you may read it."
    try:
        engine = sqlalchemy.create_engine(url)
    except (NoSuchModuleError, ModuleNotFoundError, ImportError) as err:
        raise DataError(
            f"Cannot read from {masked}: the database driver is not installed ({err}). Install "
            "the Python package that provides it (the module named above) with pip, e.g. "
            "pip install 'psycopg[binary]' for postgresql+psycopg://."
        ) from err
    except ArgumentError as err:
        raise DataError(f"{masked} is not a valid SQLAlchemy URL: {err}.") from err
    try:
        try:
            connection = engine.connect()
        except SQLAlchemyError as err:
            raise DataError(
                f"Cannot connect to the database {masked}: {_first_line(err)}. {fix}"
            ) from err
        with connection:
            if query is None:
                tables = sqlalchemy.inspect(connection).get_table_names()
                query = _default_query([str(name) for name in tables], masked)
            try:
                result = connection.execute(sqlalchemy.text(query))
                frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
            except SQLAlchemyError as err:
                raise DataError(
                    f"The query {query!r} failed on {masked}: {_first_line(err)}. Fix the SQL "
                    "(check table and column names)."
                ) from err
    finally:
        engine.dispose()
    frame = to_pandas_dtypes(frame)
    table = _table_from_frame(
        frame, f"{masked} (query: {query})", columns=columns, nrows=nrows, missing_markers={}
    )
    _require_rows(table, table.source)
    return table


def _error_text(err: Exception) -> str:
    """The first line of a DuckDB error without its category prefix or final period."""
    text = str(err).strip()
    first = text.splitlines()[0] if text else type(err).__name__
    return re.sub(r"^[A-Za-z ]*Error: ", "", first).rstrip(". ")


def _first_line(err: Exception) -> str:
    original = getattr(err, "orig", None)
    text = str(original if original is not None else err).strip()
    return text.splitlines()[0] if text else type(err).__name__
