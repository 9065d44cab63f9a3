"""``profile``: what every column of a dataset holds, and how it relates to the target.

Counts, missing values, distinct values, ranges, moments, quantiles, top values and histograms
are DuckDB aggregates over the whole table (see :mod:`mlwright.data._stats`), so the profile of
a file larger than memory costs a few scans, not a pandas load. Associations with the target
are computed on a uniform random sample of at most :data:`SAMPLE_ROWS` rows (stated in the
profile), with one measure per pair of column kinds, each in [0, 1]:

* numeric feature, numeric target: absolute Spearman rank correlation;
* categorical feature, categorical target: Cramér's V with Bergsma's bias correction;
* one numeric and one categorical: the correlation ratio (eta).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlwright.data._read import open_table
from mlwright.data._schema import Schema
from mlwright.data._stats import TableStats, compute_stats
from mlwright.data._table import Table
from mlwright.errors import DataError

__all__ = ["ColumnProfile", "Profile", "profile"]

#: Rows sampled (uniformly, seed 0) for the statistics that need row-level data.
SAMPLE_ROWS = 100_000
#: Categorical levels kept for association measures (the rest merge into one level).
MAX_LEVELS = 50


@dataclass
class ColumnProfile:
    """The profile of one column (see :func:`profile`)."""

    name: str
    semantic_type: str
    dtype: str
    storage_type: str
    count: int
    missing: int
    missing_share: float
    distinct: int
    distinct_exact: bool
    is_target: bool = False
    minimum: Any = None
    maximum: Any = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float] = field(default_factory=dict)
    top_values: list[dict[str, Any]] = field(default_factory=list)
    histogram: dict[str, Any] | None = None
    missing_markers: dict[str, int] = field(default_factory=dict)
    kept_markers: dict[str, int] = field(default_factory=dict)
    association: dict[str, Any] | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Profile:
    """A dataset's profile: one :class:`ColumnProfile` per column, plus dataset facts.

    Attributes
    ----------
    source
        Where the data came from (display string).
    n_rows, n_columns
        Size of the whole table.
    target, task, task_reason
        The target column (if given) and its detected task.
    columns
        Column profiles in data order.
    associations
        ``{feature: {"method", "value"}}`` sorted by strength, computed on ``sample_rows`` rows.
    exact
        Whether distinct counts and quantiles are exact (tables up to a million rows) or
        approximate (HyperLogLog / t-digest).
    """

    source: str
    n_rows: int
    n_columns: int
    target: str | None
    task: str | None
    task_reason: str | None
    columns: list[ColumnProfile]
    associations: dict[str, dict[str, Any]]
    sample_rows: int
    exact: bool
    created_at: str
    missing_cells: int = 0

    def column(self, name: str) -> ColumnProfile:
        """The profile of column ``name``."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dictionary of the whole profile."""
        data = asdict(self)
        data["columns"] = [column.to_dict() for column in self.columns]
        return _clean(data)

    def save_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON to ``path`` and return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")
        return path


def _clean(value: Any) -> Any:
    """Replace NaN/inf by None and tuples by lists so the result is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


@contextmanager
def opened(data: Any, na_values: Any = None) -> Iterator[Any]:
    """Yield a :class:`~mlwright.data.Table` for ``data``; close it afterwards if we opened it."""
    if isinstance(data, Table):
        open_table(data, na_values=na_values)  # refuses na_values for an open table
        yield data
        return
    table = open_table(data, na_values=na_values)
    try:
        yield table
    finally:
        table.close()


def require_rows(table: Any, minimum: int = 2) -> None:
    """Raise :class:`DataError` when ``table`` has fewer than ``minimum`` rows."""
    if table.n_rows < minimum:
        raise DataError(
            f"{table.source} has only {table.n_rows} row{'s' if table.n_rows != 1 else ''}; "
            f"profiling and checking need at least {minimum} (and a model many more). Check "
            "that the file has a header line followed by all the data, or point to the "
            "complete dataset."
        )


def profile(data: Any, *, target: str | None = None, na_values: Any = None) -> Profile:
    """Profile a dataset: per-column statistics and each feature's association with the target.

    Parameters
    ----------
    data
        A path (CSV, Parquet, JSON Lines, ...), a SQL source accepted by
        :func:`mlwright.data.open_table`, an open :class:`~mlwright.data.Table`, or a DataFrame.
    target
        The target column; when given, the task is detected and associations are computed.
    na_values
        Which cells are missing when ``data`` is read (see :func:`mlwright.data.read`). Each
        column profile says how many cells each marker turned into missing
        (``missing_markers``) and how many were kept as values (``kept_markers``).

    Returns
    -------
    Profile
        Statistics over the whole table (DuckDB aggregates; exact up to a million rows,
        approximate quantiles and distinct counts above) and associations on a sample of at
        most 100,000 rows.

    Raises
    ------
    DataError
        The data cannot be read, has fewer than two rows, or ``target`` is absent, entirely
        missing or constant.

    Examples
    --------
    >>> from mlwright.data import profile
    >>> result = profile("examples/credit-g/train.csv", target="class")
    >>> result.column("age").semantic_type
    'numeric'
    """
    with opened(data, na_values) as table:
        return profile_table(table, target=target)


def profile_table(
    table: Any,
    *,
    target: str | None = None,
    stats: TableStats | None = None,
    schema: Any = None,
) -> Profile:
    """:func:`profile` on an open table (``stats`` and ``schema`` reused when given)."""
    # Schema inference validates the target (present, not empty, not constant) and names
    # the closest columns when it is misspelled, so it runs before any statistics.
    if schema is None:
        schema = Schema.infer(table, target=target)
    require_rows(table)
    if stats is None:
        stats = compute_stats(table.connection, table.ref, table.n_rows, list(table.columns))
    sample = table.sample(SAMPLE_ROWS, seed=0) if target is not None else None
    associations = (
        target_associations(sample, schema, target) if sample is not None and target else {}
    )
    markers = getattr(table, "missing_markers", None) or {}
    kept = getattr(table, "kept_markers", None) or {}
    columns = []
    for column_schema in schema.columns:
        name = column_schema.name
        column = stats[name]
        columns.append(
            ColumnProfile(
                name=name,
                semantic_type=column_schema.semantic_type,
                dtype=column_schema.dtype,
                storage_type=column.duckdb_type,
                count=column.count,
                missing=column.missing,
                missing_share=column.missing_share,
                distinct=column.distinct,
                distinct_exact=column.distinct_exact,
                is_target=name == target,
                minimum=column.minimum,
                maximum=column.maximum,
                mean=column.mean,
                std=column.std,
                quantiles=dict(column.quantiles),
                top_values=[
                    {"value": value, "count": count, "share": count / column.count}
                    for value, count in column.top_values
                    if column.count
                ],
                histogram=column.histogram,
                missing_markers=dict(markers.get(name, {})),
                kept_markers=dict(kept.get(name, {})),
                association=associations.get(name),
                reason=column_schema.reason,
            )
        )
    ordered = dict(sorted(associations.items(), key=lambda item: -(item[1].get("value") or 0.0)))
    return Profile(
        source=str(table.source),
        n_rows=int(table.n_rows),
        n_columns=len(columns),
        target=target,
        task=schema.task,
        task_reason=schema.task_reason,
        columns=columns,
        associations=ordered,
        sample_rows=0 if sample is None else len(sample),
        exact=stats.exact,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        missing_cells=sum(column.missing for column in stats.columns.values()),
    )


# --- associations -----------------------------------------------------------------------------


def target_associations(sample, schema, target: str) -> dict[str, dict[str, Any]]:
    """Association of every feature with ``target`` on ``sample`` (see the module docstring)."""
    result: dict[str, dict[str, Any]] = {}
    labelled = sample[sample[target].notna()]
    if len(labelled) < 3:
        return result
    target_numeric = schema.task == "regression"
    y = pd.to_numeric(labelled[target], errors="coerce") if target_numeric else labelled[target]
    for column_schema in schema.columns:
        name = column_schema.name
        if name == target:
            continue
        kind = column_schema.semantic_type
        if kind in ("identifier", "constant", "text"):
            result[name] = {
                "method": None,
                "value": None,
                "note": f"not computed for {kind} columns",
            }
            continue
        x = labelled[name]
        x_numeric = kind == "numeric"
        if kind == "datetime":
            moments = pd.to_datetime(x, errors="coerce", utc=True)
            # Seconds since the earliest value: a number Spearman and eta can rank.
            x = (moments - moments.min()).dt.total_seconds()
            x_numeric = True
        if x_numeric:
            x = pd.to_numeric(x, errors="coerce")
        if x_numeric and target_numeric:
            method, value = "spearman", _spearman(x, y)
        elif not x_numeric and not target_numeric:
            method, value = "cramers_v", _cramers_v(x, y)
        elif x_numeric:
            method, value = "correlation_ratio", _correlation_ratio(y, x)
        else:
            method, value = "correlation_ratio", _correlation_ratio(x, y)
        result[name] = {"method": method, "value": value}
    return result


def _levels(series):
    """Categorical codes with missing as its own level and rare levels merged."""
    values = series.astype("string").fillna("<missing>")
    counts = values.value_counts()
    if len(counts) > MAX_LEVELS:
        keep = set(counts.index[:MAX_LEVELS])
        values = values.where(values.isin(keep), "<other>")
    return pd.Categorical(values)


def _spearman(x, y) -> float | None:
    # deferred: scipy.stats adds ~1 s to `import mlwright.data`, unused by reading
    from scipy import stats

    mask = x.notna().to_numpy() & y.notna().to_numpy()
    if mask.sum() < 3:
        return None
    a, b = x.to_numpy(dtype=float)[mask], y.to_numpy(dtype=float)[mask]
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    rho = stats.spearmanr(a, b).statistic
    return None if not np.isfinite(rho) else float(abs(rho))


def _cramers_v(x, y) -> float | None:
    table = pd.crosstab(_levels(x), _levels(y)).to_numpy(dtype=float)
    n = table.sum()
    rows, cols = table.shape
    if n < 2 or rows < 2 or cols < 2:
        return 0.0
    expected = table.sum(axis=1, keepdims=True) @ table.sum(axis=0, keepdims=True) / n
    chi2 = float(((table - expected) ** 2 / np.where(expected > 0, expected, 1)).sum())
    phi2 = chi2 / n
    # Bergsma (2013) bias correction: without it, many-level columns look associated by chance.
    phi2_corrected = max(0.0, phi2 - (rows - 1) * (cols - 1) / (n - 1))
    rows_corrected = rows - (rows - 1) ** 2 / (n - 1)
    cols_corrected = cols - (cols - 1) ** 2 / (n - 1)
    denominator = min(rows_corrected - 1, cols_corrected - 1)
    if denominator <= 0:
        return 0.0
    return float(min(1.0, math.sqrt(phi2_corrected / denominator)))


def _correlation_ratio(categories, values) -> float | None:
    mask = values.notna().to_numpy()
    if mask.sum() < 3:
        return None
    codes = _levels(categories[mask]).codes
    numbers = values.to_numpy(dtype=float)[mask]
    total = ((numbers - numbers.mean()) ** 2).sum()
    if total == 0:
        return 0.0
    counts = np.bincount(codes)
    sums = np.bincount(codes, weights=numbers)
    present = counts > 0
    means = sums[present] / counts[present]
    between = (counts[present] * (means - numbers.mean()) ** 2).sum()
    return float(min(1.0, math.sqrt(between / total)))
