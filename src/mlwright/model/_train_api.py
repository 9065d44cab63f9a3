"""``mlwright.train``: data in, a trained and saved :class:`~mlwright.model.Model` out."""

from __future__ import annotations

import contextlib
import difflib
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlwright.automl import available_families, get_metric, metric_names, search
from mlwright.data import Schema, check, fingerprint, read
from mlwright.data._markers import normalise_na_values
from mlwright.errors import ConfigError, DataError
from mlwright.model._artifact import FORMAT_VERSION, check_destination, to_json_safe
from mlwright.model._lineage import build_lineage, utc_now
from mlwright.model._model import Model

#: Budget used when neither a time limit nor a number of trials bounds the search.
DEFAULT_TIME_LIMIT = 60.0

# Finding kinds whose columns the search drops (interfaces.md); recorded in model.json.
DROPPING_FINDINGS = ("target_leakage", "identifier_column", "constant_column")

# Later stages add artifact files computed from the training data (monitoring's drift
# reference). They register here, as the registry registers its reference schemes, so this
# stage never imports them.
_TRAINING_FILE_HOOKS: list[Callable[[Model, Any], dict[str, bytes]]] = []


def register_training_files(hook: Callable[[Model, Any], dict[str, bytes]]) -> None:
    """Add files to every artifact :func:`train` builds.

    Parameters
    ----------
    hook
        Called with the trained model and its training frame; returns content by relative
        path (e.g. ``{"reference.json": b"..."}``), saved and listed in the MANIFEST.
    """
    if hook not in _TRAINING_FILE_HOOKS:
        _TRAINING_FILE_HOOKS.append(hook)


def save_reserve(time_limit: float) -> float:
    """Seconds kept back from the search for packaging and saving the artifact.

    Measured on seven datasets of the benchmark suite (credit-g to adult) at 60 s on 2 cores, the
    command spent 2.3-3.6 s after the search: packaging the model and its drift reference,
    saving it, the model card, logging to MLflow (kept separately, by the command line) and
    exiting. The reserve is 2 % of the budget (1.2 s at 60 s), at least 1 s and at most 6 s:
    the fit must end within 2 s of the budget and never more than 5 % past it.
    """
    return min(6.0, max(1.0, 0.02 * time_limit))


def train(
    data: Any,
    *,
    target: str,
    time_limit: float | None = None,
    metric: str | None = None,
    seed: int = 0,
    max_trials: int | None = None,
    models: Sequence[str] | str | None = None,
    output: str | os.PathLike[str] | None = None,
    progress: Callable[[Any], None] | None = None,
    task: str | None = None,
    overwrite: bool = False,
    n_jobs: int = 2,
    drop_flagged_columns: bool = True,
    feature_types: dict[str, str] | None = None,
    start_time: float | None = None,
    reserve_seconds: float = 0.0,
    na_values: Any = None,
) -> Model:
    """Train the most accurate model a time budget allows.

    Reads the data, infers its schema, runs the data-quality checks, searches model families and
    their settings with cross-validation (:func:`mlwright.automl.search`), and packages the
    result as a :class:`Model` (saved when ``output`` is given).

    Parameters
    ----------
    data
        A path (CSV, Parquet, JSON lines, Excel, ARFF, ...) or a pandas DataFrame, including
        the target column.
    target
        The column to predict.
    time_limit
        The whole budget in seconds, from ``start_time`` (or the call) to the saved artifact.
        Without it and without ``max_trials``, 60 seconds.
    metric
        The metric to optimise (default by task: ROC AUC, log loss, RMSE).
    seed
        Random seed; with ``max_trials`` two runs give the same model.
    max_trials
        Stop after this many candidate fits (makes the search reproducible).
    models
        Restrict the search to these model families (names or a comma-separated string).
    output
        Save the artifact to this directory.
    progress
        Called with the search's progress events (see :func:`mlwright.automl.search`).
    task
        Force the task (``"binary"``, ``"multiclass"``, ``"regression"``) instead of inferring it.
    overwrite
        Replace an existing artifact at ``output``.
    n_jobs
        Cores the search may use.
    drop_flagged_columns
        Drop the columns the data checks flag as leaking the target, identifiers or constant
        (the dropped columns and reasons are recorded in the artifact).
    feature_types
        Override inferred semantic types, e.g. ``{"zip": "categorical"}``.
    start_time
        ``time.monotonic()`` value the budget counts from (the command line passes its process
        start, so reading the data and starting Python count too).
    reserve_seconds
        Seconds of the budget kept for what the caller does after training returns (the
        command line logs the run to MLflow), on top of the time kept for saving.
    na_values
        Which cells of the data are missing values (see :func:`mlwright.data.read`): None for
        the automatic rule, a list of markers such as ``["?"]`` for every column, or a dict
        per column. The rule is recorded in the model's schema, and ``mlwright predict``,
        ``evaluate`` and the other commands read new files with it.

    Returns
    -------
    Model
        The trained model (``model.path`` is set when it was saved).
    """
    start = time.monotonic() if start_time is None else float(start_time)
    started_at = utc_now()
    settings = check_settings(
        target=target,
        time_limit=time_limit,
        metric=metric,
        seed=seed,
        max_trials=max_trials,
        models=models,
        task=task,
        n_jobs=n_jobs,
        na_values=na_values,
    )
    if output is not None:
        # A model that could not be saved fails now, not after the search.
        check_destination(output, overwrite=overwrite)
    settings["drop_flagged_columns"] = bool(drop_flagged_columns)
    settings["feature_types"] = dict(feature_types or {})
    time_limit = settings["time_limit"]
    deadline = (
        None
        if time_limit is None
        else start + time_limit - save_reserve(time_limit) - max(0.0, float(reserve_seconds))
    )
    timings: dict[str, float] = {"before_training": time.monotonic() - start}

    # The monitoring stage registers its training-files hook on import; load it on demand (as
    # model references load the registry) so that every trained model carries its drift
    # reference. Imported here, before the search, so its import time (seconds on a busy
    # machine) is inside the budget; record it so the timings add up.
    mark = time.monotonic()
    with contextlib.suppress(ImportError):
        __import__("mlwright.monitor")
    timings["imports"] = time.monotonic() - mark

    mark = time.monotonic()
    frame = read(data, na_values=na_values)
    # The rule the data was read with (a frame from mlwright.data.read knows its own).
    reading_rule = settings["na_values"] if na_values is not None else frame.attrs.get("na_values")
    target_markers = dict((frame.attrs.get("missing_markers") or {}).get(target) or {})
    timings["read"] = time.monotonic() - mark
    mark = time.monotonic()
    # The fingerprint is of the data as given (before rows without a target are dropped), so
    # that re-reading the same file reproduces it.
    data_fingerprint = fingerprint(frame)
    timings["fingerprint"] = time.monotonic() - mark
    frame, dropped_rows = _prepare_frame(frame, target, data)
    if dropped_rows["missing_target"] and target_markers:
        # Which cells were read as missing: empty ones, or markers among a numeric target's
        # numbers (a categorical target keeps its markers as labels).
        dropped_rows["missing_target_markers"] = target_markers

    mark = time.monotonic()
    schema = Schema.infer(frame, target=target, task=task)
    if feature_types:
        schema = _override_types(schema, feature_types, Schema)
    schema.na_values = reading_rule
    timings["schema"] = time.monotonic() - mark
    _check_task(schema, target)
    _check_metric(settings["metric"], str(schema.task))

    mark = time.monotonic()
    findings = check(frame, target=target)
    timings["checks"] = time.monotonic() - mark
    search_findings = (
        findings
        if drop_flagged_columns
        else [f for f in findings if getattr(f, "kind", None) not in DROPPING_FINDINGS]
    )

    mark = time.monotonic()
    result = search(
        frame,
        schema,
        metric=settings["metric"],
        deadline=deadline,
        seed=seed,
        max_trials=max_trials,
        models=settings["models"],
        n_jobs=n_jobs,
        progress=progress,
        findings=search_findings,
    )
    timings["search"] = time.monotonic() - mark

    timings["total"] = time.monotonic() - start

    model = build_model(
        result,
        schema,
        frame=frame,
        findings=findings,
        lineage=build_lineage(
            data={
                "source": _describe_source(data),
                "fingerprint": data_fingerprint,
                "n_rows": int(len(frame)),
                "n_columns": int(frame.shape[1]),
                "target": target,
                "task": schema.task,
                "task_reason": getattr(schema, "task_reason", ""),
                "dropped_rows": dropped_rows,
            },
            settings=settings,
            seed=seed,
            timings=timings,
            started_at=started_at,
            search_settings=getattr(result, "settings", None),
        ),
    )
    mark = time.monotonic()
    for hook in _TRAINING_FILE_HOOKS:
        model.extra_files.update(hook(model, frame))
    # Time spent on the later stages' files (the drift reference), saved with the lineage.
    model.lineage["timings"]["training_files"] = round(time.monotonic() - mark, 3)
    if output is not None:
        model.save(output, overwrite=overwrite)
    return model


def build_model(
    result: Any,
    schema: Any,
    *,
    frame: Any,
    findings: Sequence[Any],
    lineage: dict[str, Any],
) -> Model:
    """Package a :class:`mlwright.automl.SearchResult` as a :class:`Model`."""
    predictor = result.predictor
    feature_names = [str(name) for name in predictor.feature_names]
    classes = getattr(predictor, "classes_", None)
    info = {
        "format_version": FORMAT_VERSION,
        "task": schema.task,
        "target": schema.target,
        "class_labels": None if classes is None else to_json_safe(list(classes)),
        "feature_names": feature_names,
        "dropped_columns": to_json_safe(list(getattr(predictor, "dropped_columns", []) or [])),
        "input_dtypes": {name: str(frame[name].dtype) for name in feature_names},
        "metric": result.metric,
        "greater_is_better": bool(result.greater_is_better),
        "predictor": f"{type(predictor).__module__}.{type(predictor).__qualname__}",
    }
    metrics = {
        "metric": result.metric,
        "greater_is_better": bool(result.greater_is_better),
        "validation_score": result.validation_score,
        "validation_std": result.validation_std,
        "fold_scores": list(result.fold_scores),
        "n_folds": len(result.fold_scores),
        "leaderboard": list(result.leaderboard),
        "ensemble": [
            {"model": str(name), "weight": weight} for name, weight in (result.ensemble or [])
        ],
        "timings": dict(getattr(result, "timings", {}) or {}),
    }
    return Model(
        predictor,
        schema,
        info=to_json_safe(info),
        metrics=to_json_safe(metrics),
        lineage=to_json_safe(lineage),
        findings=[to_json_safe(_finding_dict(finding)) for finding in findings],
    )


def _finding_dict(finding: Any) -> dict[str, Any]:
    return finding.to_dict() if hasattr(finding, "to_dict") else dict(finding)


def check_settings(
    *,
    target: str,
    time_limit: float | None,
    metric: str | None,
    seed: int,
    max_trials: int | None,
    models: Sequence[str] | str | None,
    task: str | None = None,
    n_jobs: int = 2,
    na_values: Any = None,
) -> dict[str, Any]:
    """Validate the training options before any work, so a typo fails in a second.

    Returns the settings with defaults applied; raises :class:`ConfigError` listing the valid
    choices otherwise.
    """
    if not isinstance(target, str) or not target:
        raise ConfigError("The target must be the name of a column, e.g. target='class'.")
    if time_limit is not None:
        if not isinstance(time_limit, (int, float)) or not time_limit > 0:
            raise ConfigError(
                f"The time limit must be a positive number of seconds; got {time_limit!r}. "
                "Example: --time-limit 60."
            )
        time_limit = float(time_limit)
    if max_trials is not None and (not isinstance(max_trials, int) or max_trials < 1):
        raise ConfigError(
            f"The number of trials must be a positive whole number; got {max_trials!r}. "
            "Example: --max-trials 20."
        )
    if time_limit is None and max_trials is None:
        time_limit = DEFAULT_TIME_LIMIT
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"The seed must be a whole number >= 0; got {seed!r}.")
    if task is not None and task not in ("binary", "multiclass", "regression"):
        raise ConfigError(
            f"Unknown task {task!r}; choose one of binary, multiclass, regression (or leave it "
            "out to infer it from the target)."
        )
    if not isinstance(n_jobs, int) or n_jobs < 1:
        raise ConfigError(f"n_jobs must be a positive whole number; got {n_jobs!r}.")
    families = _parse_models(models)
    if metric is not None:
        _check_metric_name(metric)
    rule = normalise_na_values(na_values)
    return {
        "target": target,
        "time_limit": time_limit,
        "metric": metric,
        "seed": seed,
        "max_trials": max_trials,
        "models": families,
        "task": task,
        "n_jobs": n_jobs,
        "na_values": rule.to_json(),
    }


_SEMANTIC_TYPES = ("numeric", "categorical", "boolean", "datetime", "text", "identifier")


def _override_types(schema: Any, feature_types: dict[str, str], schema_class: Any) -> Any:
    document = schema.to_dict()
    by_name = {column["name"]: column for column in document["columns"]}
    for name, kind in feature_types.items():
        if name not in by_name:
            raise ConfigError(
                f"feature_types names the column {name!r}, which the data does not have"
                f"{_did_you_mean(name, list(by_name))}."
            )
        if kind not in _SEMANTIC_TYPES:
            raise ConfigError(
                f"feature_types gives {name!r} the type {kind!r}; choose one of "
                f"{', '.join(_SEMANTIC_TYPES)}."
            )
        if by_name[name]["semantic_type"] != kind:
            by_name[name]["semantic_type"] = kind
            by_name[name]["reason"] = "set by the caller (feature_types)"
    return schema_class.from_dict(document)


def _parse_models(models: Sequence[str] | str | None) -> list[str] | None:
    if models is None:
        return None
    names = models.split(",") if isinstance(models, str) else list(models)
    families = [str(name).strip().lower() for name in names if str(name).strip()]
    if not families:
        raise ConfigError(
            f"No model family named in {models!r}; choose from: {', '.join(_known_families())}."
        )
    known = _known_families()
    unknown = [name for name in families if name not in known]
    if unknown:
        raise ConfigError(
            f"Unknown model family {unknown[0]!r}{_did_you_mean(unknown[0], known)}. Valid "
            f"families: {', '.join(known)}."
        )
    return families


def _known_families() -> list[str]:
    return list(available_families())


def _check_metric_name(metric: str) -> None:
    for task in ("binary", "multiclass", "regression"):
        try:
            get_metric(metric, task)
        except ConfigError:
            continue
        return
    known = list(dict.fromkeys([*metric_names("binary"), *metric_names("regression")]))
    raise ConfigError(
        f"Unknown metric {metric!r}{_did_you_mean(metric, known)}. Valid metrics: "
        f"classification: {', '.join(metric_names('binary'))}; regression: "
        f"{', '.join(metric_names('regression'))}."
    )


def _check_metric(metric: str | None, task: str) -> None:
    if metric is None:
        return
    # Raises ConfigError naming the metrics valid for this task.
    get_metric(metric, task)


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _prepare_frame(frame: Any, target: str, data: Any) -> tuple[Any, dict[str, int]]:
    """Check the target column and drop rows without a target (they cannot teach anything)."""
    if target not in frame.columns:
        columns = [str(name) for name in frame.columns]
        shown = ", ".join(repr(name) for name in columns[:30])
        raise DataError(
            f"The target column {target!r} is not in {_describe_source(data)}"
            f"{_did_you_mean(target, columns)}. Its columns are: {shown}."
        )
    missing = frame[target].isna()
    n_missing = int(missing.sum())
    if n_missing == len(frame):
        raise DataError(
            f"The target column {target!r} of {_describe_source(data)} has no values (every "
            "row is missing). Choose the column that holds the outcome to predict."
        )
    if n_missing:
        frame = frame.loc[~missing].reset_index(drop=True)
    return frame, {"missing_target": n_missing}


def _check_task(schema: Any, target: str) -> None:
    if schema.task is None:
        column = schema.column(target)
        raise DataError(
            f"Cannot tell what kind of prediction the target {target!r} needs (it looks "
            f"{column.semantic_type}: {column.reason}). Pass task='binary', 'multiclass' or "
            "'regression'."
        )


def _describe_source(data: Any) -> str:
    if isinstance(data, (str, os.PathLike)):
        return str(Path(data))
    return f"the {type(data).__name__} passed in"
