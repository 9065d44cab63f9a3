"""Delimited text (CSV, TSV, gzip): encoding, delimiter and header sniffed, scanned by DuckDB.

A file is never parsed whole by pandas. Numbers with a decimal comma, ragged lines and values
that do not fit the sampled column type are found and reported or handled."""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Sequence
from pathlib import Path

import duckdb

from mlwright.data._markers import MarkerRule
from mlwright.data._markers import apply_to_table as apply_markers_to_table
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
    fetch_one,
    new_connection,
    quote_identifier,
)
from mlwright.errors import DataError

# Below this size DuckDB looks at every row to choose column types; above, at a sample (a value
# that does not fit the sampled type is handled by re-reading that column with a wider type).
_FULL_SNIFF_BYTES = 8 * 1024 * 1024


_DELIMITERS = (",", "\t", ";", "|")


_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


_DECIMAL_COMMA = re.compile(r"\s*[-+]?\d+,\d+\s*")


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
