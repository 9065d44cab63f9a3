"""The reference a model carries: a compact description of its training data.

Drift is measured against this reference, so monitoring never needs the original data. It is
written into the model artifact at training time as ``reference.json`` (listed in the MANIFEST
like every other file) and holds, per feature the model uses:

- numeric features: the count of values, the missing share, 101 quantiles (a quantile sketch),
  decile bin edges with the training data's share per bin (for PSI), mean and standard
  deviation;
- categorical features (and booleans): the count of every category (the most frequent
  :data:`MAX_CATEGORIES`, the rest summed as ``other``), and the missing share;

plus a bounded random sample of the training rows (for the two-sample tests, which need
values, not summaries) and the distribution of the model's predictions on that sample
(prediction drift).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlwright.errors import ModelError

REFERENCE_FILE = "reference.json"
REFERENCE_FORMAT = 1
#: Categories kept per feature, most frequent first; the rest are counted as ``other``.
MAX_CATEGORIES = 200
#: Rows kept in the reference sample (two-sample tests need values).
DEFAULT_SAMPLE_ROWS = 5000
#: Quantile bins for the population stability index.
PSI_BINS = 10

NUMERIC = "numeric"
CATEGORICAL = "categorical"
# Semantic types drift is measured on; text, identifiers, constants and dates are not.
_KINDS = {"numeric": NUMERIC, "categorical": CATEGORICAL, "boolean": CATEGORICAL}


def category_strings(values: pd.Series) -> pd.Series:
    """Categories as strings, the same whether they came from a CSV or a JSON log.

    Whole floats lose their ``.0`` (a category ``3`` read as ``3.0`` from JSON is still ``3``);
    missing values stay missing.
    """
    present = values.dropna()
    if present.empty:
        return pd.Series([], dtype=object, index=present.index)
    if pd.api.types.is_float_dtype(present.dtype):
        as_float = present.astype(float)
        whole = np.isfinite(as_float) & (as_float == np.round(as_float))
        if bool(whole.all()):
            return as_float.astype(np.int64).astype(str)
    if pd.api.types.is_bool_dtype(present.dtype):
        return present.map(lambda value: str(bool(value)))
    return present.astype(str)


def numeric_values(values: pd.Series) -> np.ndarray:
    """The non-missing values of a column as float64 (text that is not a number is missing)."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        array = values.to_numpy(dtype=float, na_value=np.nan)
    else:
        array = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return array[np.isfinite(array)]


def psi_edges(values: np.ndarray, bins: int = PSI_BINS) -> list[float]:
    """Inner bin edges at the reference's quantiles (duplicates removed for discrete data)."""
    if values.size == 0:
        return []
    inner = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    return [float(edge) for edge in np.unique(inner)]


def numeric_summary(values: np.ndarray, n_total: int) -> dict[str, Any]:
    """The reference summary of one numeric column (``values`` without missing)."""
    n = int(values.size)
    summary: dict[str, Any] = {
        "kind": NUMERIC,
        "n": n,
        "missing_share": 0.0 if n_total == 0 else float(1 - n / n_total),
    }
    if n == 0:
        summary.update(quantiles=[], edges=[], shares=[], mean=None, std=None)
        return summary
    edges = psi_edges(values)
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    summary.update(
        quantiles=[float(q) for q in np.quantile(values, np.linspace(0, 1, 101))],
        edges=edges,
        shares=[float(c) / n for c in counts],
        mean=float(values.mean()),
        std=float(values.std()),
    )
    return summary


def categorical_summary(values: pd.Series, n_total: int) -> dict[str, Any]:
    """The reference summary of one categorical column (category counts, missing share)."""
    strings = category_strings(values)
    counts = strings.value_counts(sort=True)
    kept = counts.iloc[:MAX_CATEGORIES]
    return {
        "kind": CATEGORICAL,
        "n": int(counts.sum()),
        "missing_share": 0.0 if n_total == 0 else float(1 - counts.sum() / n_total),
        "categories": {str(key): int(value) for key, value in kept.items()},
        "other": int(counts.iloc[MAX_CATEGORIES:].sum()),
    }


def feature_kinds(model: Any) -> dict[str, str]:
    """Feature name -> ``numeric`` or ``categorical`` for the features drift is measured on."""
    kinds: dict[str, str] = {}
    for name in model.feature_names:
        try:
            column = model.schema.column(name)
        except Exception:  # a feature the schema does not describe is skipped
            continue
        kind = _KINDS.get(column.semantic_type)
        if kind is not None:
            kinds[name] = kind
    return kinds


def infer_kinds(frame: pd.DataFrame) -> dict[str, str]:
    """Feature kinds of a frame without a model (numbers are numeric, the rest categorical)."""
    kinds: dict[str, str] = {}
    for name in frame.columns:
        dtype = frame[name].dtype
        if pd.api.types.is_bool_dtype(dtype):
            kinds[str(name)] = CATEGORICAL
        elif pd.api.types.is_numeric_dtype(dtype):
            n_distinct = frame[name].nunique(dropna=True)
            kinds[str(name)] = CATEGORICAL if n_distinct <= 2 else NUMERIC
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            continue
        else:
            kinds[str(name)] = CATEGORICAL
    return kinds


def build_reference(
    frame: pd.DataFrame,
    kinds: dict[str, str],
    *,
    predictions: dict[str, Any] | None = None,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    seed: int = 0,
    sample_index: np.ndarray | None = None,
) -> dict[str, Any]:
    """Summarise data as a drift reference.

    Parameters
    ----------
    frame
        The training (or any reference) data.
    kinds
        Feature name -> ``"numeric"`` or ``"categorical"``.
    predictions
        The prediction distribution on the sample (see :func:`prediction_summary`).
    sample_rows
        Rows kept as the reference sample.
    seed
        Seed of the sample.
    sample_index
        Positions of the sample rows (drawn when omitted).

    Returns
    -------
    dict
        The JSON-ready reference.
    """
    n_total = len(frame)
    features: dict[str, Any] = {}
    for name, kind in kinds.items():
        column = frame[name]
        if kind == NUMERIC:
            features[name] = numeric_summary(numeric_values(column), n_total)
        else:
            features[name] = categorical_summary(column, n_total)
    if sample_index is None:
        sample_index = sample_positions(n_total, sample_rows, seed)
    sample = frame.iloc[sample_index]
    columns: dict[str, list[Any]] = {}
    for name, kind in kinds.items():
        column = sample[name]
        if kind == NUMERIC:
            array = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            columns[name] = [None if not math.isfinite(v) else float(v) for v in array]
        else:
            strings = category_strings(column).reindex(column.index)
            columns[name] = [None if pd.isna(v) else str(v) for v in strings]
    return {
        "format": REFERENCE_FORMAT,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "n_rows": int(n_total),
        "features": features,
        "sample": {"n_rows": int(len(sample_index)), "columns": columns},
        "predictions": predictions,
    }


def sample_positions(n_total: int, sample_rows: int, seed: int) -> np.ndarray:
    """Sorted positions of a uniform sample of at most ``sample_rows`` rows."""
    if n_total <= sample_rows:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).choice(n_total, sample_rows, replace=False))


def prediction_summary(task: str, labels: Any, probabilities: Any = None) -> dict[str, Any]:
    """The distribution of a model's outputs, summarised like a feature.

    Classification: the predicted labels as a categorical summary and, for a binary model,
    the positive-class probability as a numeric summary (``score``). Regression: the
    predicted values as a numeric summary.
    """
    series = pd.Series(np.asarray(labels).tolist() if labels is not None else [])
    if task == "regression":
        values = numeric_values(series)
        label = numeric_summary(values, len(series))
        # Two-sample tests on the outputs need the values themselves (a bounded sample).
        label["values"] = [round(float(v), 6) for v in values]
        return {"task": task, "label": label, "score": None}
    summary: dict[str, Any] = {
        "task": task,
        "label": categorical_summary(series, len(series)),
        "score": None,
    }
    if task == "binary" and probabilities is not None:
        array = np.asarray(probabilities, dtype=float)
        positive = array[:, -1] if array.ndim == 2 else array
        positive = positive[np.isfinite(positive)]
        summary["score"] = numeric_summary(positive, len(positive))
        summary["score"]["values"] = [round(float(v), 6) for v in positive]
    return summary


def model_reference(
    model: Any, frame: pd.DataFrame, *, sample_rows: int = DEFAULT_SAMPLE_ROWS, seed: int = 0
) -> dict[str, Any]:
    """The reference of a freshly trained model on its training data.

    Parameters
    ----------
    model
        The trained :class:`mlwright.model.Model`.
    frame
        Its training data (target included or not).
    sample_rows, seed
        Size and seed of the reference sample.
    """
    kinds = feature_kinds(model)
    positions = sample_positions(len(frame), sample_rows, seed)
    sample = frame.iloc[positions]
    labels = model.predict(sample)
    probabilities = None
    if model.task == "binary":
        probabilities = np.asarray(model.predict_proba(sample), dtype=float)
    reference = build_reference(
        frame,
        kinds,
        predictions=prediction_summary(model.task, labels, probabilities),
        sample_rows=sample_rows,
        seed=seed,
        sample_index=positions,
    )
    reference["target"] = model.target
    reference["task"] = model.task
    reference["classes"] = model.classes
    return reference


def reference_files(model: Any, frame: pd.DataFrame) -> dict[str, bytes]:
    """The artifact files the monitoring stage adds at training time (``reference.json``)."""
    reference = model_reference(model, frame, seed=int((model.lineage or {}).get("seed", 0) or 0))
    return {REFERENCE_FILE: json.dumps(reference, allow_nan=False).encode("utf-8")}


def load_reference(model: Any) -> dict[str, Any]:
    """The reference stored in a model's artifact.

    Raises
    ------
    ModelError
        The model has no reference (saved by a version of mlwright without monitoring, or
        never saved).
    """
    directory = getattr(model, "path", None)
    path = Path(directory) / REFERENCE_FILE if directory else None
    if path is None or not path.is_file():
        raise ModelError(
            f"The model at '{directory}' carries no drift reference ({REFERENCE_FILE}); it was "
            "trained by a version of mlwright without monitoring. Train it again, or compare two "
            "files directly: mlwright monitor --reference TRAIN.csv --current NEW.csv."
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ModelError(
            f"{REFERENCE_FILE} of the model at '{directory}' is damaged ({err})."
        ) from err


def reference_sample(reference: dict[str, Any]) -> pd.DataFrame:
    """The reference's sample rows as a DataFrame (numeric columns as float)."""
    columns = reference.get("sample", {}).get("columns", {})
    data = {}
    for name, values in columns.items():
        kind = reference["features"].get(name, {}).get("kind")
        if kind == NUMERIC:
            data[name] = np.array([np.nan if v is None else v for v in values], dtype=float)
        else:
            data[name] = pd.Series(values, dtype=object)
    return pd.DataFrame(data)
