"""Why does the model predict what it predicts? Global importance, per-row contributions,
partial dependence.

- Permutation importance: how much the metric drops when one input column is shuffled, on
  held-out rows; model-agnostic, measured on the raw input columns. All shuffled copies go to
  the model in one batch, so it costs a single large prediction.
- Native importance: total split gain of the tree models in the ensemble (LightGBM, XGBoost),
  weighted by ensemble weight and summed back onto input columns.
- Contributions of one prediction: TreeSHAP from LightGBM/XGBoost's own ``pred_contrib`` when
  every member of the ensemble is such a tree model (exact, in the model's raw score space:
  log-odds for binary); otherwise the ``shap`` package's Kernel SHAP on the predicted
  probability (or value) against background rows, which works for any model.
- Partial dependence: the mean prediction as one column sweeps a grid of its values.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import xgboost

from mlwright.errors import ConfigError, DataError
from mlwright.evaluate._calibration import AdjustedPredictor
from mlwright.evaluate._compare import DEFAULT_METRIC
from mlwright.evaluate._metrics import greater_is_better, prepare, weighted_metric

NATIVE_FAMILIES = ("lightgbm", "xgboost")
_MAX_ROWS_IMPORTANCE = 2000
_MAX_ROWS_DEPENDENCE = 300


def base_predictor(predictor: Any) -> Any:
    """The training engine's predictor under any calibration/threshold wrapper."""

    while isinstance(predictor, AdjustedPredictor):
        predictor = predictor.predictor
    return predictor


def _output_columns(predictor: Any) -> list[str] | None:
    """The input column behind each column of the preprocessed matrix."""
    preprocessor = getattr(predictor, "preprocessor", None)
    specs = getattr(preprocessor, "specs_", None)
    if not specs:
        return None
    columns: list[str] = []
    for spec in specs:
        width = spec.n_outputs if spec.kind in ("datetime", "text") else 1
        columns += [spec.column] * width
    return columns


def _model_outputs(model: Any, frame) -> np.ndarray:
    """The quantity explained: positive-class probability, predicted-class probability, value."""
    if model.task == "regression":
        return np.asarray(model.predict(frame), dtype=float)
    proba = np.asarray(model.predict_proba(frame), dtype=float)
    return proba[:, 1] if model.task == "binary" else proba


def _sample(frame, limit: int, seed: int):
    if len(frame) <= limit:
        return frame.reset_index(drop=True)
    return frame.sample(n=limit, random_state=seed).reset_index(drop=True)


def permutation_importance(
    model: Any,
    frame,
    y_true,
    *,
    metric: str | None = None,
    n_repeats: int = 3,
    max_rows: int = _MAX_ROWS_IMPORTANCE,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Drop in the metric when each input column is shuffled, largest first.

    Parameters
    ----------
    model
        A :class:`mlwright.Model`.
    frame
        Held-out rows with the model's input columns.
    y_true
        Their true target values.
    metric
        The metric (default: the model's training metric).
    n_repeats
        Shuffles per column; the mean and standard deviation are reported.
    max_rows
        Rows used (a seeded sample of larger data).
    seed
        Seed of the sample and the shuffles.

    Returns
    -------
    list of dict
        ``column``, ``importance`` (mean drop, in metric units; positive = the column helps),
        ``std``; sorted by importance.
    """
    metric = metric or _model_metric(model)
    higher = greater_is_better(metric, model.task)
    rows = _sample(frame.assign(__target__=np.asarray(y_true)), max_rows, seed)
    truth = rows.pop("__target__").to_numpy()
    columns = [name for name in model.feature_names if name in rows.columns]
    rng = np.random.default_rng(seed)
    copies = [rows]
    for column in columns:
        for _ in range(n_repeats):
            shuffled = rows.copy()
            shuffled[column] = rows[column].to_numpy()[rng.permutation(len(rows))]
            copies.append(shuffled)
    stacked = pd.concat(copies, ignore_index=True)
    outputs = _predictions(model, stacked)
    n = len(rows)
    scores = []
    for block in range(len(copies)):
        part = outputs[block * n : (block + 1) * n]
        data = prepare(
            truth, part, task=model.task, classes=model.classes, threshold=decision_threshold(model)
        )
        scores.append(float(weighted_metric(metric, data, np.ones((1, n)))[0]))
    baseline = scores[0]
    results = []
    for position, column in enumerate(columns):
        permuted = np.asarray(scores[1 + position * n_repeats : 1 + (position + 1) * n_repeats])
        drop = (baseline - permuted) if higher else (permuted - baseline)
        results.append(
            {"column": column, "importance": float(drop.mean()), "std": float(drop.std())}
        )
    results.sort(key=lambda row: -row["importance"])
    return results


def _predictions(model: Any, frame) -> np.ndarray:
    if model.task == "regression":
        return np.asarray(model.predict(frame), dtype=float)
    return np.asarray(model.predict_proba(frame), dtype=float)


def _model_metric(model: Any) -> str:

    name = (getattr(model, "metrics", None) or {}).get("metric")
    return str(name) if name else DEFAULT_METRIC[model.task]


def decision_threshold(model: Any) -> float | None:
    """The binary decision threshold stored with the model, if any."""
    return getattr(getattr(model, "predictor", None), "threshold", None)


def native_importance(model: Any) -> list[dict[str, Any]] | None:
    """Split-gain importance of the ensemble's tree models, per input column, summing to 1.

    Returns ``None`` when no member of the ensemble reports a native importance.
    """
    predictor = base_predictor(model.predictor)
    output_columns = _output_columns(predictor)
    members = getattr(predictor, "members", None)
    if not output_columns or not members:
        return None
    total = np.zeros(len(output_columns))
    used = 0.0
    for member in members:
        if getattr(member, "layer", 1) != 1:
            continue  # a stacked member splits on other models' predictions too
        for booster in member.models:
            gains = _booster_gain(member.family, booster, len(output_columns))
            if gains is None or gains.sum() <= 0:
                continue
            share = member.weight / len(member.models)
            total += share * gains / gains.sum()
            used += share
    if used == 0:
        return None
    by_column: dict[str, float] = {}
    for column, value in zip(output_columns, total / used, strict=True):
        by_column[column] = by_column.get(column, 0.0) + float(value)
    ranked = sorted(by_column.items(), key=lambda item: -item[1])
    return [{"column": column, "importance": value} for column, value in ranked]


def _booster_gain(family: str, booster: Any, width: int) -> np.ndarray | None:
    if family == "lightgbm" and hasattr(booster, "feature_importance"):
        gains = np.asarray(booster.feature_importance(importance_type="gain"), dtype=float)
        return gains if gains.size == width else None
    if family == "xgboost" and hasattr(booster, "get_score"):
        scores = booster.get_score(importance_type="total_gain")
        gains = np.zeros(width)
        names = booster.feature_names
        for key, value in scores.items():
            position = names.index(key) if names and key in names else int(key.lstrip("f"))
            if position < width:
                gains[position] = value
        return gains
    importances = getattr(booster, "feature_importances_", None)
    if importances is not None and len(importances) == width:
        return np.asarray(importances, dtype=float)
    return None


def contributions(
    model: Any, row_frame, *, method: str = "auto", background=None, seed: int = 0
) -> dict[str, Any]:
    """Per-feature contributions to one prediction.

    Parameters
    ----------
    model
        A :class:`mlwright.Model`.
    row_frame
        A one-row DataFrame with the model's input columns.
    method
        ``"auto"`` (native TreeSHAP when possible, else ``shap``), ``"native"`` or ``"shap"``.
    background
        Held-out rows standing for typical input, against which the ``shap`` explainer
        measures the row (required for ``shap``; the native method needs none).
    seed
        Seed of the ``shap`` permutation explainer.

    Returns
    -------
    dict
        ``method`` (``"treeshap"`` or ``"shap"``), ``space`` (what the contributions add up
        to: ``"log-odds"``, ``"raw score"``, ``"probability"`` or ``"value"``; for a
        classifier blending several boosted models, ``"weighted mean log-odds of N models"``
        or ``"weighted mean raw score of N models"``), ``explained``
        (the class explained, or ``None``), ``base_value``, ``prediction`` (base plus
        contributions), ``contributions`` (``column``, ``value``, ``contribution``; largest
        absolute first).
    """
    if len(row_frame) != 1:
        raise DataError(f"Explain one row at a time; got {len(row_frame)} rows.")
    if method not in ("auto", "native", "shap"):
        raise ConfigError(f"Unknown explanation method {method!r}; use auto, native or shap.")
    predictor = base_predictor(model.predictor)
    explained_index = _explained_class(model, row_frame)
    if method in ("auto", "native"):
        native = _native_contributions(model, predictor, row_frame, explained_index)
        if native is not None:
            return native
        if method == "native":
            raise ConfigError(
                "Native TreeSHAP needs an ensemble made only of LightGBM or XGBoost models on "
                "the input features; this model has other members (or a stacked second layer). "
                "Use --method shap (pip install 'mlwright[explain]')."
            )
    return _shap_contributions(model, row_frame, explained_index, background, seed)


def _explained_class(model: Any, row_frame) -> int | None:
    if model.task == "regression":
        return None
    if model.task == "binary":
        return 1
    return int(np.argmax(np.asarray(model.predict_proba(row_frame), dtype=float)[0]))


def _native_contributions(model, predictor, row_frame, explained_index) -> dict[str, Any] | None:
    members = getattr(predictor, "members", None)
    output_columns = _output_columns(predictor)
    if not members or not output_columns:
        return None
    if any(
        member.family not in NATIVE_FAMILIES or getattr(member, "layer", 1) != 1
        for member in members
    ):
        return None
    matrix = predictor.preprocessor.transform(row_frame)
    width = len(output_columns)
    total = np.zeros(width + 1)
    for member in members:
        for booster in member.models:
            values = _booster_contrib(member.family, booster, matrix, model.task, width)
            if values is None:
                return None
            if model.task == "multiclass":
                values = values[explained_index]
            total += (member.weight / len(member.models)) * values
    space = {"binary": "log-odds", "multiclass": "raw score", "regression": "value"}[model.task]
    boosters = sum(len(member.models) for member in members)
    if model.task != "regression" and boosters > 1:
        # The ensemble averages probabilities, and a mean of probabilities is not the mean of
        # their log-odds: the exact, additive quantity here is the members' weighted mean raw
        # score, so say so rather than call it the model's log-odds.
        space = f"weighted mean {space} of {boosters} models"
    return _package(
        "treeshap",
        space,
        model,
        row_frame,
        output_columns,
        total[:-1],
        float(total[-1]),
        explained_index,
    )


def _booster_contrib(family, booster, matrix, task, width) -> np.ndarray | None:
    """Contributions (width + 1 with the bias last); multiclass: (k, width + 1)."""
    if family == "lightgbm":
        values = np.asarray(booster.predict(matrix, pred_contrib=True), dtype=float)[0]
        if task == "multiclass":
            return values.reshape(-1, width + 1)
        return values

    types = getattr(booster, "feature_types", None)
    dmatrix = xgboost.DMatrix(matrix, feature_types=types, enable_categorical=True)
    values = np.asarray(booster.predict(dmatrix, pred_contribs=True), dtype=float)[0]
    return values


def _shap_contributions(model, row_frame, explained_index, background, seed) -> dict[str, Any]:
    try:
        with warnings.catch_warnings():
            # shap's import touches deprecated matplotlib colormap APIs; not ours to fix.
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            # deferred: shap is the optional [explain] extra (~2 s to import)
            import shap
    except ImportError as err:
        raise ConfigError(
            "Explaining this model's predictions needs the shap package (its ensemble has "
            "members without native TreeSHAP): pip install 'mlwright[explain]'."
        ) from err

    if background is None or len(background) == 0:
        raise ConfigError("The shap explainer needs background rows: pass the evaluation data.")
    columns = [name for name in model.feature_names if name in row_frame.columns]
    reference = _sample(background[columns], 30, seed)
    # Encode every column as numbers for shap's masker and decode before predicting, so the
    # model sees its own raw values.
    tables: dict[str, list[Any]] = {}
    encoded_reference = np.empty((len(reference), len(columns)))
    encoded_row = np.empty((1, len(columns)))
    for position, column in enumerate(columns):
        values = list(dict.fromkeys([*row_frame[column].tolist(), *reference[column].tolist()]))
        tables[column] = values
        lookup = {_key(v): i for i, v in enumerate(values)}
        encoded_reference[:, position] = [lookup[_key(v)] for v in reference[column].tolist()]
        encoded_row[0, position] = lookup[_key(row_frame[column].iloc[0])]

    def predict(encoded: np.ndarray) -> np.ndarray:
        decoded = pd.DataFrame(
            {
                column: [tables[column][int(code)] for code in encoded[:, position]]
                for position, column in enumerate(columns)
            }
        )
        decoded = decoded.astype({c: row_frame[c].dtype for c in columns}, errors="ignore")
        outputs = _model_outputs(model, decoded)
        return outputs if outputs.ndim == 1 else outputs[:, explained_index]

    # Kernel SHAP: a few batched model calls and no JIT compilation (shap's permutation
    # explainer compiles numba code for a minute on first use, too slow for a command).
    explainer = shap.KernelExplainer(predict, encoded_reference, silent=True)
    n_samples = max(2 * len(columns) + 64, 300)
    values = np.asarray(
        explainer.shap_values(encoded_row, nsamples=n_samples, silent=True), dtype=float
    ).reshape(-1)[: len(columns)]
    base = float(np.asarray(explainer.expected_value).reshape(-1)[0])
    space = "value" if model.task == "regression" else "probability"
    return _package("shap", space, model, row_frame, columns, values, base, explained_index)


def _key(value: Any) -> Any:
    return "__missing__" if value is None or value != value else value


def _package(method, space, model, row_frame, output_columns, values, base, explained_index):
    by_column: dict[str, float] = {}
    for column, value in zip(output_columns, values, strict=True):
        by_column[column] = by_column.get(column, 0.0) + float(value)
    ranked = sorted(by_column.items(), key=lambda item: -abs(item[1]))
    row = row_frame.iloc[0]
    return {
        "method": method,
        "space": space,
        "explained": None if explained_index is None else model.classes[explained_index],
        "base_value": base,
        "prediction": base + float(sum(by_column.values())),
        "contributions": [
            {
                "column": column,
                "value": _plain(row[column]) if column in row_frame.columns else None,
                "contribution": value,
            }
            for column, value in ranked
        ],
    }


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)


def partial_dependence(
    model: Any,
    frame,
    columns: list[str],
    *,
    grid_size: int = 20,
    max_rows: int = _MAX_ROWS_DEPENDENCE,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Mean prediction as each column sweeps a grid of its values (others left as they are).

    Numeric columns use quantiles of their values as the grid; other columns their most
    frequent values. Binary models report the positive-class probability, multiclass models
    the probability of each class, regression the predicted value.

    Returns
    -------
    list of dict
        Per column: ``column``, ``kind`` (``"numeric"`` or ``"categorical"``), ``grid``,
        ``average`` (per grid value; multiclass: a list per class), ``output``.
    """
    rows = _sample(frame, max_rows, seed)
    results = []
    for column in columns:
        if column not in rows.columns:
            continue
        series = rows[column]
        numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        observed = series.dropna()
        if observed.empty:
            continue
        if numeric and observed.nunique() > grid_size:
            grid = np.unique(
                np.quantile(observed.to_numpy(dtype=float), np.linspace(0.02, 0.98, grid_size))
            )
            if pd.api.types.is_integer_dtype(series):
                grid = np.unique(np.round(grid)).astype(np.int64)
            grid_values: list[Any] = grid.tolist()
        else:
            grid_values = observed.value_counts().index[:grid_size].tolist()
            if numeric:
                grid_values = sorted(grid_values)
        copies = []
        for value in grid_values:
            copy = rows.copy()
            copy[column] = pd.Series([value] * len(rows), dtype=series.dtype)
            copies.append(copy)
        outputs = _model_outputs(model, pd.concat(copies, ignore_index=True))
        n = len(rows)
        averages = [outputs[i * n : (i + 1) * n].mean(axis=0) for i in range(len(grid_values))]
        results.append(
            {
                "column": column,
                "kind": "numeric" if numeric else "categorical",
                "grid": [_plain(v) for v in grid_values],
                "average": [a.tolist() if np.ndim(a) else float(a) for a in averages],
                "output": {
                    "binary": f"P({model.classes[1]})" if model.classes else "probability",
                    "multiclass": "P(class)",
                    "regression": f"predicted {model.target}",
                }[model.task],
            }
        )
    return results
