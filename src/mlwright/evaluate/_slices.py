"""Metrics per slice of the data: for whom does the model work worst?

A slice is the rows sharing one value of a chosen column (numbers with many distinct values
are cut into quartiles). Each slice gets the metric with a bootstrap interval, the gap to the
whole data, and a flag when it is too small for its number to mean much; the worst slices come
first.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlwright.errors import DataError
from mlwright.evaluate._intervals import bootstrap_distribution, percentile_interval
from mlwright.evaluate._metrics import EvalData, greater_is_better, weighted_metric

MISSING = "(missing)"
OTHER = "(other)"
# Numeric columns with more distinct values than this are cut into quartiles.
_NUMERIC_DISTINCT = 12


def slice_labels(column) -> np.ndarray:
    """Text label of each row's slice for one column (quartile ranges for numbers)."""
    series = pd.Series(column).reset_index(drop=True)
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    if numeric and series.nunique(dropna=True) > _NUMERIC_DISTINCT:
        binned = pd.qcut(series, q=4, duplicates="drop")
        labels = binned.astype(object).map(
            lambda interval: str(interval) if interval == interval else MISSING
        )
        return labels.to_numpy(dtype=object)
    return np.asarray(
        [MISSING if value is None or value != value else str(value) for value in series.tolist()],
        dtype=object,
    )


def slice_metrics(
    frame,
    data: EvalData,
    columns: list[str],
    *,
    metric: str,
    min_rows: int = 30,
    max_values: int = 20,
    n_resamples: int = 200,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """The metric on each value of each chosen column, worst first.

    Parameters
    ----------
    frame
        The evaluated rows (a DataFrame aligned with ``data``) holding the slice columns.
    data
        The encoded true values and predictions (see :func:`mlwright.evaluate._metrics.prepare`).
    columns
        Columns to slice by.
    metric
        The metric to compare slices on.
    min_rows
        Slices with fewer rows are flagged ``small`` (their intervals are wide).
    max_values
        Per column, the most frequent values kept; the rest are pooled as ``(other)``.
    n_resamples, seed
        Bootstrap settings for the per-slice intervals.

    Returns
    -------
    list of dict
        ``column``, ``value``, ``n_rows``, ``share``, ``metric``, ``value_interval``
        (:class:`Interval` as a dict), ``gap`` (slice minus overall, in the metric's units),
        ``small``; worst slices first, small slices after the others, undefined metrics
        last.
    """
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise DataError(
            f"Cannot slice by {missing}: the data has no such column. Available columns: "
            f"{', '.join(map(str, list(frame.columns)[:30]))}."
        )
    if len(frame) != data.n_rows:
        raise DataError(
            f"The slice data has {len(frame)} rows but {data.n_rows} rows were predicted."
        )
    higher = greater_is_better(metric, data.task)
    overall = float(weighted_metric(metric, data, np.ones((1, data.n_rows)))[0])
    rows_out: list[dict[str, Any]] = []
    for column in columns:
        labels = slice_labels(frame[column])
        values, counts = np.unique(labels, return_counts=True)
        order = np.argsort(-counts, kind="mergesort")
        kept = set(values[order[:max_values]].tolist())
        if len(values) > max_values:
            labels = np.where(np.isin(labels, list(kept)), labels, OTHER)
        for value in dict.fromkeys(labels[np.argsort(labels, kind="mergesort")].tolist()):
            mask = labels == value
            subset = data.subset(mask)
            point = float(weighted_metric(metric, subset, np.ones((1, subset.n_rows)))[0])
            distribution = bootstrap_distribution(
                lambda weights, subset=subset: weighted_metric(metric, subset, weights),
                subset.n_rows,
                n_resamples=n_resamples,
                seed=seed,
            )
            interval = percentile_interval(point, distribution)
            rows_out.append(
                {
                    "column": str(column),
                    "value": str(value),
                    "n_rows": int(mask.sum()),
                    "share": float(mask.mean()),
                    "metric": metric,
                    "value_interval": interval.to_dict(),
                    "gap": point - overall if np.isfinite(point) else None,
                    "small": bool(mask.sum() < min_rows),
                }
            )

    def badness(row: dict[str, Any]) -> tuple[int, int, float]:
        # Undefined last, then small slices (too noisy to rank with the others), worst first.
        value = row["value_interval"]["value"]
        if value is None:
            return (1, 1, 0.0)
        return (0, int(row["small"]), value if higher else -value)

    rows_out.sort(key=badness)
    return rows_out
