"""Missing-value markers: which cells of a text column are missing, and which are data.

Text files write a missing value as an empty cell, or as a marker such as ``NA`` or ``?``. But a
marker can also be data: ``-`` is a label in a ``+``/``-`` target, ``?`` a category of adult's
``workclass``. The rule (documented in ``docs/data.md`` and :func:`mlwright.data.read`):

1. The empty cell (also one holding only whitespace) is always missing.
2. Automatic rule (no ``na_values``), per text column: the values that are not markers are its
   "regular values". When there are some and every one is a number, the markers are anomalous:
   they become missing and the column numeric. When there are none, the column holds no data
   and its markers become missing too. Otherwise the markers are regular values and are kept.
3. Explicit rule (``na_values`` a list): exactly those strings, plus the empty cell, become
   missing in every column, numbers included (``-999``). A dict ``{column: [markers]}`` gives
   the listed columns exactly their markers; the other columns use the automatic rule.

Markers are compared after stripping surrounding whitespace. :func:`decide` is the one decision
that the CSV reader (SQL over the loaded DuckDB table, :func:`apply_to_table`) and the Excel
reader (pandas, :func:`apply_to_frame`) both use, so the two cannot disagree.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mlwright.data._names import suggest_names
from mlwright.data._stats import storage_kind
from mlwright.data._table import fetch_one, quote_identifier
from mlwright.errors import ConfigError

__all__ = [
    "AUTOMATIC",
    "LEGACY_MARKERS",
    "MISSING_MARKERS",
    "MarkerRule",
    "apply_to_frame",
    "apply_to_table",
    "decide",
    "normalise_na_values",
    "parse_cli_na_values",
    "schema_rule",
]

#: Cells that may mean "missing" in text files (CSV/TSV/Excel); "" is the empty cell.
MISSING_MARKERS: tuple[str, ...] = ("", "NA", "N/A", "null", "NULL", "NaN", "?", "-")
_TEXT_MARKERS: tuple[str, ...] = MISSING_MARKERS[1:]
#: Before the automatic rule every marker was missing in every column; models whose schema does
#: not record a rule were trained on data read that way, and read new data the same way.
LEGACY_MARKERS: tuple[str, ...] = _TEXT_MARKERS

_WHITESPACE = " \t\r\n\x0b\x0c"
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_NUMBER_SQL = r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"
# With a decimal comma (``1,5``) DuckDB reads neither ``1.5`` nor thousands separators.
_NUMBER_COMMA_SQL = r"[-+]?(\d+,?\d*|,\d+)([eE][-+]?\d+)?"
_INTEGER_SQL = r"[-+]?\d+"
_TEXT_TYPES = ("VARCHAR",)

Counts = dict[str, dict[str, int]]


# --------------------------------------------------------------------------------------------
# the rule


@dataclass(frozen=True)
class MarkerRule:
    """Which markers become missing in which column.

    Attributes
    ----------
    default
        Markers of every column not in ``columns``; None means the automatic rule.
    columns
        Columns with their own explicit markers.
    strict
        Whether a column in ``columns`` that the data does not have is an error (it is for a
        user's ``na_values``; the rule built from a model's schema names the target, which a
        prediction file need not hold).
    """

    default: tuple[str, ...] | None = None
    columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    strict: bool = True

    def markers_for(self, column: str) -> tuple[str, ...] | None:
        """The explicit markers of ``column``, or None when the automatic rule applies."""
        if column in self.columns:
            return self.columns[column]
        return self.default

    @property
    def explicit(self) -> bool:
        """Whether any column has explicit markers."""
        return self.default is not None or bool(self.columns)

    def to_json(self) -> None | list[str] | dict[str, list[str]]:
        """The rule as ``na_values`` would give it: None, a list, or a dict per column."""
        if self.default is not None and not self.columns:
            return list(self.default)
        if self.default is None and self.columns:
            return {name: list(markers) for name, markers in self.columns.items()}
        if self.default is None:
            return None
        return {
            "*": list(self.default),
            **{name: list(markers) for name, markers in self.columns.items()},
        }

    def check_columns(self, available: Sequence[str], source: str) -> None:
        """Raise ConfigError for a column of a strict rule that ``source`` does not have."""
        if not self.strict:
            return
        present = set(available)
        unknown = [name for name in self.columns if name not in present]
        if unknown:
            close = suggest_names(unknown[0], available)
            hint = (
                f"Did you mean {', '.join(repr(name) for name in close)}?"
                if close
                else "Use the exact column names (they are case-sensitive)."
            )
            raise ConfigError(
                f"na_values names the column {unknown[0]!r}, which {source} does not have. "
                f"{hint} Give markers only for columns of the data, e.g. "
                "{'income': ['-999']}."
            )


#: No na_values: the automatic rule in every column.
AUTOMATIC = MarkerRule()

_EXAMPLE = "Pass a list of strings such as ['?', '-999'], or a dict {'income': ['-999']}."


def normalise_na_values(na_values: Any) -> MarkerRule:
    """Check ``na_values`` (None, a list of strings, or a dict of such lists) and build its rule.

    Raises
    ------
    ConfigError
        ``na_values`` is of another type, or holds something other than strings and numbers.
    """
    if na_values is None:
        return AUTOMATIC
    if isinstance(na_values, MarkerRule):
        return na_values
    if isinstance(na_values, str):
        shown = [part.strip() for part in na_values.split(",")] if na_values else []
        raise ConfigError(
            f"na_values must be a list of strings, got the string {na_values!r}. Pass "
            f"na_values={shown!r} (on the command line: --na-values {na_values!r})."
        )
    if isinstance(na_values, Mapping):
        columns: dict[str, tuple[str, ...]] = {}
        default: tuple[str, ...] | None = None
        for name, markers in na_values.items():
            if not isinstance(name, str):
                raise ConfigError(
                    f"na_values has the key {name!r} ({type(name).__name__}); the keys of a "
                    f"na_values dict are column names (strings). {_EXAMPLE}"
                )
            if name == "*":  # every other column (how to_json writes a rule with both)
                default = _marker_list(markers, "na_values['*']")
            else:
                columns[name] = _marker_list(markers, f"na_values[{name!r}]")
        return MarkerRule(default=default, columns=columns)
    if isinstance(na_values, (list, tuple, set, frozenset)):
        return MarkerRule(default=_marker_list(na_values, "na_values"))
    raise ConfigError(
        f"na_values must be None, a list of strings or a dict of such lists per column, got a "
        f"{type(na_values).__name__} ({na_values!r}). {_EXAMPLE}"
    )


def _marker_list(markers: Any, where: str) -> tuple[str, ...]:
    if isinstance(markers, str) or not isinstance(markers, (list, tuple, set, frozenset)):
        raise ConfigError(
            f"{where} must be a list of strings, got {type(markers).__name__} {markers!r}. "
            f"{_EXAMPLE}"
        )
    result: list[str] = []
    for marker in sorted(markers, key=str) if isinstance(markers, (set, frozenset)) else markers:
        if isinstance(marker, bool) or not isinstance(marker, (str, int, float)):
            raise ConfigError(
                f"{where} holds {marker!r} ({type(marker).__name__}); markers are strings (or "
                f"numbers such as -999) as they appear in the file. {_EXAMPLE}"
            )
        if isinstance(marker, float) and not math.isfinite(marker):
            raise ConfigError(
                f"{where} holds {marker!r}; give the marker as it appears in the file, e.g. "
                "'NaN' or 'inf' as a string."
            )
        text = str(marker).strip(_WHITESPACE)
        if text and text not in result:  # "" is always missing: listing it changes nothing
            result.append(text)
    return tuple(result)


def parse_cli_na_values(text: str | None) -> Any:
    """``--na-values``: ``'?,-'`` gives ``['?', '-']``, ``''`` gives ``[]``, a JSON object a dict.

    Raises
    ------
    ConfigError
        The text starts with ``{`` but is not a JSON object.
    """
    if text is None:
        return None
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError as err:
            raise ConfigError(
                f"--na-values {text!r} starts with '{{' but is not valid JSON ({err.msg} at "
                "character {err.pos}). Write markers per column as a JSON object, e.g. "
                '--na-values \'{"income": ["-999"], "city": ["?"]}\', or a comma-separated '
                "list for every column, e.g. --na-values '?,-'."
            ) from err
        if not isinstance(value, dict):
            raise ConfigError(f"--na-values {text!r} is not a JSON object.")
        return value
    return [part.strip() for part in stripped.split(",") if part.strip()]


def decide(explicit: bool, regular: int, numeric: int) -> tuple[bool, bool]:
    """``(markers become missing, column becomes numeric)`` for one column.

    Parameters
    ----------
    explicit
        Whether the column's markers were given (``na_values``): then they always go.
    regular
        Non-empty cells that are not markers.
    numeric
        How many of those are numbers.
    """
    all_numbers = regular > 0 and numeric == regular
    missing = explicit or regular == 0 or all_numbers
    return missing, missing and all_numbers


def schema_rule(schema: Any) -> MarkerRule:
    """The rule that reads new data for a model the way its training data was read.

    The rule recorded at training (``schema.na_values``) applies again. Under the automatic
    rule, a column that held text keeps its markers as values (a one-row file whose
    ``workclass`` is ``?`` would otherwise look like a column of markers only, and lose the
    category); a numeric column, or one that held no value, reads its markers as missing.
    """
    recorded = normalise_na_values(getattr(schema, "na_values", None))
    if recorded.default is not None and not recorded.columns:
        return MarkerRule(default=recorded.default, strict=False)
    columns: dict[str, tuple[str, ...]] = {}
    for column in schema.columns:
        if column.name in recorded.columns:
            columns[column.name] = recorded.columns[column.name]
        elif column.dtype == "string" and column.missing_share < 1:
            columns[column.name] = ()
        else:
            columns[column.name] = _TEXT_MARKERS
    return MarkerRule(default=recorded.default, columns=columns, strict=False)


def _numeric_marker_values(markers: Sequence[str]) -> list[tuple[str, float]]:
    return [(marker, float(marker)) for marker in markers if _NUMBER.fullmatch(marker)]


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _double(value: float) -> str:
    return repr(float(value))


def _add(counts: Counts, column: str, marker: str, count: int) -> None:
    if count:
        bucket = counts.setdefault(column, {})
        bucket[marker] = bucket.get(marker, 0) + int(count)


# --------------------------------------------------------------------------------------------
# DuckDB tables (CSV and every other source loaded into DuckDB)


def apply_to_table(
    connection: Any,
    table_name: str,
    rule: MarkerRule,
    *,
    automatic: bool = True,
    decimal_comma: bool = False,
    count_empty: bool = True,
) -> tuple[Counts, Counts]:
    """Apply ``rule`` to the loaded table in place; return ``(missing, kept)`` marker counts.

    One aggregate query counts, per text column, its empty cells, each marker, its regular
    values and how many of those are (whole) numbers; then UPDATE nulls the cells that become
    missing and ALTER gives numeric columns their type. Nothing is read twice from the source,
    so this works on tables larger than memory.

    Parameters
    ----------
    automatic
        Apply the automatic rule to columns without explicit markers (text files); otherwise
        those columns are left as they are (typed sources: Parquet, databases, DataFrames).
    decimal_comma
        The file writes ``1,5`` for one and a half.
    count_empty
        Count missing cells under ``""`` in every column (text files, where missing is an
        empty cell); otherwise only cells this pass turns into missing are counted.
    """

    ref = quote_identifier(table_name)
    types = {
        row[0]: str(row[1]).upper() for row in connection.execute(f"DESCRIBE {ref}").fetchall()
    }
    number_pattern = _NUMBER_COMMA_SQL if decimal_comma else _NUMBER_SQL
    aggregates: list[str] = []
    layout: list[tuple[str, str, str]] = []  # (column, what, marker)
    plans: dict[str, tuple[bool, tuple[str, ...]]] = {}  # text column -> (explicit, markers)
    numeric_markers: dict[str, list[tuple[str, float]]] = {}
    for name, kind in types.items():
        markers = rule.markers_for(name)
        identifier = quote_identifier(name)
        base = kind.split("(")[0]
        if base in _TEXT_TYPES:
            if markers is None and not automatic:
                if count_empty:
                    aggregates.append(f"count(*) - count({identifier})")
                    layout.append((name, "null", ""))
                continue
            explicit = markers is not None
            listed = markers if markers is not None else _TEXT_MARKERS
            plans[name] = (explicit, listed)
            text = f"trim({identifier}, {_literal(_WHITESPACE)})"
            aggregates += [f"count(*) - count({identifier})", f"count_if({text} = '')"]
            layout += [(name, "null", ""), (name, "blank", "")]
            for marker in listed:
                aggregates.append(f"count_if({text} = {_literal(marker)})")
                layout.append((name, "marker", marker))
        else:
            if count_empty:
                aggregates.append(f"count(*) - count({identifier})")
                layout.append((name, "null", ""))
            values = (
                _numeric_marker_values(markers or ()) if storage_kind(base) == "numeric" else []
            )
            if values:
                numeric_markers[name] = values
                for marker, value in values:
                    aggregates.append(f"count_if({identifier} = {_double(value)})")
                    layout.append((name, "typed_marker", marker))
    if not aggregates:
        return {}, {}
    row = fetch_one(connection, f"SELECT {', '.join(aggregates)} FROM {ref}")
    found: dict[str, dict[tuple[str, str], int]] = {}
    for (name, what, marker), value in zip(layout, row, strict=True):
        found.setdefault(name, {})[(what, marker)] = int(value or 0)

    # A text column without markers or blank cells is left as DuckDB typed it, so only the
    # columns holding some are scanned again, for their regular values and numbers.
    aggregates, layout = [], []
    for name, (_explicit, listed) in plans.items():
        counts = found.get(name, {})
        if not any(count for (what, _), count in counts.items() if what in ("blank", "marker")):
            continue
        text = f"trim({quote_identifier(name)}, {_literal(_WHITESPACE)})"
        excluded = "".join(f" AND {text} <> {_literal(marker)}" for marker in listed)
        regular = f"{text} <> ''{excluded}"
        number = f"{regular} AND regexp_full_match({text}, {_literal(number_pattern)})"
        aggregates += [
            f"count_if({regular})",
            f"count_if({number})",
            f"count_if({regular} AND regexp_full_match({text}, {_literal(_INTEGER_SQL)}) "
            f"AND TRY_CAST({text} AS BIGINT) IS NOT NULL)",
        ]
        layout += [(name, "regular", ""), (name, "numeric", ""), (name, "integer", "")]
        # A number given as a marker also matches the same number written otherwise
        # (-999 matches -999.0) once the column is numeric.
        for marker, value in _numeric_marker_values(rule.markers_for(name) or ()):
            as_double = _to_double(text, decimal_comma)
            aggregates.append(f"count_if({number} AND {as_double} = {_double(value)})")
            layout.append((name, "number_marker", marker))
    if aggregates:
        row = fetch_one(connection, f"SELECT {', '.join(aggregates)} FROM {ref}")
        for (name, what, marker), value in zip(layout, row, strict=True):
            found[name][(what, marker)] = int(value or 0)

    missing: Counts = {}
    kept: Counts = {}
    updates: list[str] = []
    conversions: list[tuple[str, str, str]] = []  # (column, type, expression)
    for name in types:
        counts = found.get(name, {})
        _add(missing, name, "", counts.get(("null", ""), 0) if count_empty else 0)
        if name in numeric_markers:
            identifier = quote_identifier(name)
            for marker, _value in numeric_markers[name]:
                _add(missing, name, marker, counts.get(("typed_marker", marker), 0))
            if any(counts.get(("typed_marker", marker), 0) for marker, _ in numeric_markers[name]):
                values = ", ".join(_double(value) for _, value in numeric_markers[name])
                updates.append(
                    f"{identifier} = CASE WHEN {identifier} IN ({values}) THEN NULL "
                    f"ELSE {identifier} END"
                )
        if name not in plans:
            continue
        explicit, listed = plans[name]
        identifier = quote_identifier(name)
        text = f"trim({identifier}, {_literal(_WHITESPACE)})"
        blank = counts.get(("blank", ""), 0)
        _add(missing, name, "", blank)
        if ("regular", "") not in counts:
            continue  # no marker, no blank cell: nothing to decide
        regular = counts[("regular", "")]
        numeric = counts[("numeric", "")]
        to_missing, to_number = decide(explicit, regular, numeric)
        marker_counts = {marker: counts.get(("marker", marker), 0) for marker in listed}
        for marker, count in marker_counts.items():
            _add(missing if to_missing else kept, name, marker, count)
        gone = [marker for marker, count in marker_counts.items() if count and to_missing]
        condition = f"{text} = ''" + "".join(f" OR {text} = {_literal(m)}" for m in gone)
        if to_number:
            whole = counts.get(("integer", ""), 0) == regular
            number_values = _numeric_marker_values(listed)
            for marker, _value in number_values:
                _add(missing, name, marker, counts.get(("number_marker", marker), 0))
            source = _to_double(text, decimal_comma) if not whole else text
            cast = f"CAST({source} AS {'BIGINT' if whole else 'DOUBLE'})"
            expression = f"CASE WHEN {identifier} IS NULL OR {condition} THEN NULL ELSE {cast} END"
            if number_values:
                values = ", ".join(_double(value) for _, value in number_values)
                expression = (
                    f"CASE WHEN ({expression}) IN ({values}) THEN NULL ELSE ({expression}) END"
                )
            conversions.append((name, "BIGINT" if whole else "DOUBLE", expression))
        elif blank or gone:
            updates.append(f"{identifier} = CASE WHEN {condition} THEN NULL ELSE {identifier} END")
    if updates:
        connection.execute(f"UPDATE {ref} SET {', '.join(updates)}")
    for name, kind, expression in conversions:
        connection.execute(
            f"ALTER TABLE {ref} ALTER {quote_identifier(name)} TYPE {kind} USING {expression}"
        )
    return missing, kept


def _to_double(text: str, decimal_comma: bool) -> str:
    source = f"replace({text}, ',', '.')" if decimal_comma else text
    return f"TRY_CAST({source} AS DOUBLE)"


# --------------------------------------------------------------------------------------------
# pandas frames (Excel)


def apply_to_frame(frame: Any, rule: MarkerRule) -> tuple[Any, Counts, Counts]:
    """:func:`apply_to_table` for a frame of cells as Excel gives them (numbers, text, dates).

    Returns the frame with markers turned into missing values where :func:`decide` says so and
    numeric columns given a numeric dtype, and the ``(missing, kept)`` counts.
    """
    missing: Counts = {}
    kept: Counts = {}
    columns: dict[str, Any] = {}
    for position, label in enumerate(frame.columns):
        name = str(label)
        column = frame.iloc[:, position]
        markers = rule.markers_for(name)
        explicit = markers is not None
        listed = markers if markers is not None else _TEXT_MARKERS
        empty = column.map(_is_empty_cell).astype(bool)
        _add(missing, name, "", int(empty.sum()))
        stripped = column.map(
            lambda value: value.strip(_WHITESPACE) if isinstance(value, str) else None
        )
        is_marker = {marker: stripped == marker for marker in listed}
        any_marker = pd.Series(False, index=column.index)
        for hits in is_marker.values():
            any_marker |= hits
        regular_mask = ~empty & ~any_marker
        regular_values = column[regular_mask]
        numeric_mask = regular_values.map(_is_number_cell).astype(bool)
        to_missing, to_number = decide(explicit, int(regular_mask.sum()), int(numeric_mask.sum()))
        gone = empty.copy()
        for marker, hits in is_marker.items():
            _add(missing if to_missing else kept, name, marker, int(hits.sum()))
            if to_missing:
                gone |= hits
        for marker, value in _numeric_marker_values(markers or ()):
            hits = regular_mask & column.map(lambda cell, v=value: _number_of(cell) == v).astype(
                bool
            )
            _add(missing, name, marker, int(hits.sum()))
            gone |= hits
        column = column.mask(gone)
        if to_number:
            column = pd.to_numeric(column.map(_number_of).astype("float64"))
            whole = column.dropna()
            if len(whole) and (whole == whole.round()).all() and (whole.abs() < 2**53).all():
                column = column if column.isna().any() else column.astype("int64")
        elif column.dropna().map(lambda value: isinstance(value, str)).all():
            column = column.astype("str")
        columns[name] = column
    result = pd.DataFrame(columns)
    result.columns = [str(name) for name in frame.columns]
    return result, missing, kept


def _is_empty_cell(value: Any) -> bool:
    if isinstance(value, str):
        return not value.strip(_WHITESPACE)
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _is_number_cell(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return isinstance(value, str) and bool(_NUMBER.fullmatch(value.strip(_WHITESPACE)))


def _number_of(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip(_WHITESPACE)):
        return float(value.strip(_WHITESPACE))
    return None
