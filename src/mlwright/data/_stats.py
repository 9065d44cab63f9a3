"""Column statistics computed with DuckDB aggregates, shared by ``profile`` and ``check``.

Everything here runs as SQL over a :class:`~mlwright.data.Table` (a DuckDB relation), so a file
larger than memory is scanned in a few passes and never loaded into pandas:

* pass 1: counts, missing, distinct, min/max/mean/std, quantiles, how many strings parse as
  numbers (one ``SELECT`` for all columns);
* pass 2: histograms, value counts of few-valued columns, outlier counts (needs pass 1's
  quantiles); top values of many-valued text columns by one ``GROUP BY`` each;
* pass 3 (checks only): duplicate and conflicting-duplicate rows through row hashes.

Exact ``count(DISTINCT)`` and exact quantiles keep every value in memory, so above
:data:`EXACT_LIMIT` rows distinct counts switch to DuckDB's HyperLogLog sketch
(``approx_count_distinct``) and quantiles are computed on a uniform reservoir sample of
:data:`QUANTILE_SAMPLE` rows; the result says which were used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

#: Up to this many rows, distinct counts and quantiles are exact; above, approximate.
EXACT_LIMIT = 1_000_000
#: Columns with at most this many distinct values get their full value counts in pass 2.
FULL_COUNTS_LIMIT = 200
#: How many top values a column reports.
TOP_K = 10
#: Histogram bins for numeric columns.
HISTOGRAM_BINS = 30
#: Rows sampled for quantiles above :data:`EXACT_LIMIT` rows.
QUANTILE_SAMPLE = 100_000
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
#: Extreme-outlier fences: Q1 - k*IQR and Q3 + k*IQR (Tukey's "far out" values).
IQR_FACTOR = 3.0

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
    "REAL",
    "DECIMAL",
)
_INTEGER_TYPES = _NUMERIC_TYPES[:10]
_TEMPORAL_PREFIXES = ("DATE", "TIMESTAMP", "TIME")


def quote(name: str) -> str:
    """SQL-quote a column name (double quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def storage_kind(duckdb_type: str) -> str:
    """Map a DuckDB type name to ``numeric``, ``boolean``, ``temporal``, ``string`` or ``other``."""
    base = duckdb_type.upper().split("(")[0].strip()
    if base in _NUMERIC_TYPES:
        return "numeric"
    if base == "BOOLEAN":
        return "boolean"
    if base.startswith(_TEMPORAL_PREFIXES):
        return "temporal"
    if base in ("VARCHAR", "STRING", "TEXT", "ENUM", "UUID") or base.startswith("ENUM"):
        return "string"
    return "other"


def is_integer_type(duckdb_type: str) -> bool:
    return duckdb_type.upper().split("(")[0].strip() in _INTEGER_TYPES


@dataclass
class ColumnStats:
    """Aggregates of one column (numbers are ``None`` where they do not apply)."""

    name: str
    duckdb_type: str
    kind: str
    count: int = 0
    missing: int = 0
    distinct: int = 0
    distinct_exact: bool = True
    minimum: Any = None
    maximum: Any = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float] = field(default_factory=dict)
    quantiles_exact: bool = True
    top_values: list[tuple[Any, int]] = field(default_factory=list)
    histogram: dict[str, list] | None = None
    #: strings only: how many non-missing values parse as numbers, and examples of the others.
    numeric_parsable: int | None = None
    non_numeric_examples: list[str] = field(default_factory=list)
    numeric_examples: list[str] = field(default_factory=list)
    #: numeric only: extreme outliers beyond the IQR fences.
    outliers_low: int | None = None
    outliers_high: int | None = None
    fence_low: float | None = None
    fence_high: float | None = None

    @property
    def missing_share(self) -> float:
        total = self.count + self.missing
        return self.missing / total if total else 0.0

    @property
    def top_share(self) -> float:
        """Share of non-missing values taken by the most frequent value."""
        if not self.top_values or not self.count:
            return 0.0
        return self.top_values[0][1] / self.count


@dataclass
class TableStats:
    """Statistics of every column plus the row count."""

    n_rows: int
    columns: dict[str, ColumnStats]
    exact: bool

    def __getitem__(self, name: str) -> ColumnStats:
        return self.columns[name]


def column_types(connection, ref: str) -> dict[str, str]:
    """DuckDB type of every column of the relation ``ref``."""
    rows = connection.execute(f"DESCRIBE SELECT * FROM {ref}").fetchall()
    return {row[0]: str(row[1]) for row in rows}


def _float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def plain(value: Any) -> Any:
    """A JSON-friendly Python value (dates as ISO strings, decimals as floats)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    as_float = _float(value)
    return as_float if as_float is not None else str(value)


def compute_stats(
    connection, ref: str, n_rows: int, columns: list[str], *, histograms: bool = True
) -> TableStats:
    """Run passes 1 and 2 over ``ref`` and return the statistics of ``columns``.

    Parameters
    ----------
    connection
        A DuckDB connection on which ``ref`` is a relation.
    ref
        The SQL-quoted relation name.
    n_rows
        Its row count (decides exact or approximate aggregates).
    columns
        Which columns to summarise, in order.
    histograms
        Whether to bin many-valued numeric columns (the checks do not need it).
    """
    types = column_types(connection, ref)
    exact = n_rows <= EXACT_LIMIT
    stats = {name: ColumnStats(name, types[name], storage_kind(types[name])) for name in columns}
    _pass_one(connection, ref, stats, exact)
    _pass_two(connection, ref, stats, histograms)
    return TableStats(n_rows=n_rows, columns=stats, exact=exact)


def _pass_one(connection, ref: str, stats: dict[str, ColumnStats], exact: bool) -> None:
    expressions: list[str] = ["count(*)"]
    slots: list[tuple[str, str]] = []

    def add(name: str, key: str, sql: str) -> None:
        expressions.append(sql)
        slots.append((name, key))

    quantile_list = "[" + ", ".join(str(q) for q in QUANTILES) + "]"
    for name, column in stats.items():
        col = quote(name)
        add(name, "count", f"count({col})")
        distinct = f"count(DISTINCT {col})" if exact else f"approx_count_distinct({col})"
        add(name, "distinct", distinct)
        if column.kind == "numeric":
            value = f"CAST({col} AS DOUBLE)"
            add(name, "minimum", f"min({value})")
            add(name, "maximum", f"max({value})")
            add(name, "mean", f"avg({value})")
            add(name, "std", f"stddev_samp({value})")
            if exact:
                add(name, "quantiles", f"quantile_cont({value}, {quantile_list})")
        elif column.kind == "temporal":
            add(name, "minimum", f"min({col})")
            add(name, "maximum", f"max({col})")
        elif column.kind == "string":
            add(name, "numeric_parsable", f"count(TRY_CAST(trim({col}) AS DOUBLE))")
    row = connection.execute(f"SELECT {', '.join(expressions)} FROM {ref}").fetchone()
    total = int(row[0])
    for (name, key), value in zip(slots, row[1:], strict=True):
        column = stats[name]
        if key == "count":
            column.count = int(value or 0)
            column.missing = total - column.count
        elif key == "distinct":
            column.distinct = int(value or 0)
            column.distinct_exact = exact
        elif key in ("minimum", "maximum"):
            setattr(column, key, _float(value) if column.kind == "numeric" else plain(value))
        elif key in ("mean", "std"):
            setattr(column, key, _float(value))
        elif key == "numeric_parsable":
            setattr(column, key, None if value is None else int(value))
        elif key == "quantiles":
            column.quantiles_exact = exact
            if value is not None:
                column.quantiles = {
                    f"{q:g}": _float(v) for q, v in zip(QUANTILES, value, strict=True)
                }
    for column in stats.values():
        # Approximate distinct counts can overshoot; never report more than the values seen.
        column.distinct = min(column.distinct, column.count)
    if not exact:
        _sample_quantiles(connection, ref, stats, quantile_list)


def _sample_quantiles(connection, ref: str, stats: dict[str, ColumnStats], quantiles: str) -> None:
    """Quantiles of big tables from a uniform reservoir sample of :data:`QUANTILE_SAMPLE` rows.

    Exact quantiles would hold every value; t-digest sketches (``approx_quantile``) cost ten
    times more CPU than sampling 100,000 rows once, whose quantiles are within about 0.3
    percentile points of the truth.
    """
    numeric = [name for name, column in stats.items() if column.kind == "numeric" and column.count]
    if not numeric:
        return
    expressions = ", ".join(
        f"quantile_cont(CAST({quote(name)} AS DOUBLE), {quantiles})" for name in numeric
    )
    row = connection.execute(
        f"SELECT {expressions} FROM (SELECT * FROM {ref} "
        f"USING SAMPLE reservoir({QUANTILE_SAMPLE} ROWS) REPEATABLE (0))"
    ).fetchone()
    for name, value in zip(numeric, row, strict=True):
        column = stats[name]
        column.quantiles_exact = False
        if value is not None:
            column.quantiles = {f"{q:g}": _float(v) for q, v in zip(QUANTILES, value, strict=True)}


def _pass_two(connection, ref: str, stats: dict[str, ColumnStats], histograms: bool) -> None:
    expressions: list[str] = []
    slots: list[tuple[str, str, Any]] = []

    def add(name: str, key: str, sql: str, extra: Any = None) -> None:
        expressions.append(sql)
        slots.append((name, key, extra))

    for name, column in stats.items():
        col = quote(name)
        if column.count == 0:
            continue
        if column.kind == "numeric":
            value = f"CAST({col} AS DOUBLE)"
            if column.distinct <= FULL_COUNTS_LIMIT:
                # Few values (codes, flags, counts): exact value counts double as histogram.
                add(name, "value_counts", f"histogram({value})")
            elif histograms:
                edges = _bin_edges(column.minimum, column.maximum, HISTOGRAM_BINS)
                add(name, "histogram", f"histogram({value}, {_sql_list(edges[1:])})", edges)
            q1, q3 = column.quantiles.get("0.25"), column.quantiles.get("0.75")
            if q1 is not None and q3 is not None:
                iqr = q3 - q1
                if iqr > 0:
                    low, high = q1 - IQR_FACTOR * iqr, q3 + IQR_FACTOR * iqr
                    column.fence_low, column.fence_high = low, high
                    add(name, "outliers_low", f"count(*) FILTER (WHERE {value} < {low!r})")
                    add(name, "outliers_high", f"count(*) FILTER (WHERE {value} > {high!r})")
        elif column.distinct <= FULL_COUNTS_LIMIT:
            add(name, "value_counts", f"histogram({col})")
        if column.kind == "string" and column.numeric_parsable:
            number = f"TRY_CAST(trim({col}) AS DOUBLE)"
            add(name, "numeric_examples", f"list(DISTINCT {col}) FILTER ({number} IS NOT NULL)")
            add(
                name,
                "non_numeric_examples",
                f"list(DISTINCT {col}) FILTER ({number} IS NULL AND {col} IS NOT NULL)",
            )
    _top_values_of_many_valued(connection, ref, stats)
    if not expressions:
        return
    # ``list(DISTINCT ...)`` keeps every distinct value; cap it in SQL so huge columns stay small.
    expressions = [
        f"list_slice({sql}, 1, 5)" if slot[1].endswith("_examples") else sql
        for sql, slot in zip(expressions, slots, strict=True)
    ]
    row = connection.execute(f"SELECT {', '.join(expressions)} FROM {ref}").fetchone()
    for (name, key, extra), value in zip(slots, row, strict=True):
        column = stats[name]
        if key == "value_counts":
            counts = sorted(
                ((plain(v), int(c)) for v, c in (value or {}).items()),
                key=lambda item: (-item[1], str(item[0])),
            )
            column.top_values = counts[:TOP_K]
            if column.kind == "numeric":
                ordered = sorted(counts, key=lambda item: item[0])
                column.histogram = {
                    "type": "values",
                    "values": [v for v, _ in ordered],
                    "counts": [c for _, c in ordered],
                }
            else:
                column.histogram = {
                    "type": "categories",
                    "values": [v for v, _ in counts[:30]],
                    "counts": [c for _, c in counts[:30]],
                    "other": sum(c for _, c in counts[30:]),
                }
        elif key == "histogram":
            column.histogram = {
                "type": "bins",
                "edges": extra,
                "counts": [int(c) for c in _bin_counts(value or {}, extra)],
            }
        elif key in ("outliers_low", "outliers_high"):
            setattr(column, key, int(value or 0))
        elif key in ("numeric_examples", "non_numeric_examples"):
            setattr(column, key, [str(v) for v in (value or [])])
    for column in stats.values():
        if column.top_values and column.histogram is None and column.kind != "numeric":
            column.top_values.sort(key=lambda item: -item[1])
            column.histogram = {
                "type": "categories",
                "values": [v for v, _ in column.top_values],
                "counts": [c for _, c in column.top_values],
                "other": max(column.count - sum(c for _, c in column.top_values), 0),
            }


def _top_values_of_many_valued(connection, ref: str, stats: dict[str, ColumnStats]) -> None:
    """Exact top values of non-numeric columns with many distinct values (one GROUP BY each).

    A hash aggregate per column costs far less than approximate top-k sketches kept for every
    column in the main pass, and it gives exact counts.
    """
    for name, column in stats.items():
        if column.kind == "numeric" or column.count == 0 or column.distinct <= FULL_COUNTS_LIMIT:
            continue
        col = quote(name)
        rows = connection.execute(
            f"SELECT {col}, count(*) AS n FROM {ref} WHERE {col} IS NOT NULL "
            f"GROUP BY {col} ORDER BY n DESC, {col} LIMIT {TOP_K}"
        ).fetchall()
        column.top_values = [(plain(value), int(count)) for value, count in rows]


def _bin_edges(low: float | None, high: float | None, bins: int) -> list[float]:
    if low is None or high is None:
        return [0.0, 1.0]
    if high <= low:
        return [low, low + 1.0]
    width = (high - low) / bins
    return [low + i * width for i in range(bins)] + [high]


def _bin_counts(mapping: dict, edges: list[float]) -> list[int]:
    """Turn DuckDB's ``histogram(x, upper_bounds)`` map into one count per bin.

    DuckDB counts values ``<= bound`` per upper bound; anything above the last bound
    (rounding at the maximum) lands in an extra key, which joins the last bin.
    """
    counts = [0] * (len(edges) - 1)
    bounds = edges[1:]
    for bound, count in mapping.items():
        value = _float(bound)
        index = len(counts) - 1
        if value is not None:
            for position, upper in enumerate(bounds):
                if value <= upper:
                    index = position
                    break
        counts[index] += int(count)
    return counts


def _sql_list(values: list[float]) -> str:
    return "[" + ", ".join(repr(float(v)) for v in values) + "]::DOUBLE[]"


def duplicate_counts(
    connection, ref: str, columns: list[str], target: str | None
) -> dict[str, int]:
    """Duplicate rows and conflicting duplicates (same features, different target).

    Rows are compared through 64-bit hashes of their values (collisions are negligible: about
    n^2 / 2^65, i.e. 3e-6 for ten million rows), so memory grows with the number of distinct
    rows, not with their width.

    Returns
    -------
    dict
        ``duplicate_rows`` (rows identical to an earlier row), ``conflicting_groups`` (feature
        combinations seen with more than one target value) and ``conflicting_rows`` (rows in
        those groups).
    """
    every = ", ".join(quote(name) for name in columns)
    features = [name for name in columns if name != target]
    result = {"duplicate_rows": 0, "conflicting_groups": 0, "conflicting_rows": 0}
    if not columns:
        return result
    if target is None or not features:
        row = connection.execute(
            f"SELECT count(*) - count(DISTINCT hash({every})) FROM {ref}"
        ).fetchone()
        result["duplicate_rows"] = int(row[0])
        return result
    feature_list = ", ".join(quote(name) for name in features)
    # One hash aggregate over (features, label) pairs answers both questions: rows beyond the
    # first of each pair are exact duplicates; feature hashes with several labels conflict.
    sql = f"""
        WITH pairs AS (
            SELECT hash({feature_list}) AS features, hash({quote(target)}) AS label,
                   {quote(target)} IS NOT NULL AS labelled, count(*) AS n
            FROM {ref} GROUP BY ALL
        ), conflicts AS (
            -- rows without a label cannot conflict; they only count as duplicates
            SELECT features, count(*) AS labels, sum(n) AS rows
            FROM pairs WHERE labelled GROUP BY features HAVING count(*) > 1
        )
        SELECT
            (SELECT coalesce(sum(n - 1), 0) FROM pairs),
            (SELECT count(*) FROM conflicts),
            (SELECT coalesce(sum(rows), 0) FROM conflicts)
    """
    row = connection.execute(sql).fetchone()
    result["duplicate_rows"] = int(row[0])
    result["conflicting_groups"] = int(row[1])
    result["conflicting_rows"] = int(row[2])
    return result
