"""Lineage of a trained model: which data, code, settings and environment made it."""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
from importlib import metadata
from typing import Any

# Distributions whose versions decide what a pickled predictor is and how it predicts.
_TRACKED_DISTRIBUTIONS = (
    "mlwright",
    "numpy",
    "pandas",
    "pyarrow",
    "scipy",
    "scikit-learn",
    "lightgbm",
    "xgboost",
    "xgboost-cpu",
    "catboost",
    "optuna",
    "duckdb",
)


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries a model depends on (installed ones only)."""
    versions = {"python": platform.python_version()}
    for name in _TRACKED_DISTRIBUTIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    if "xgboost" not in versions and "xgboost-cpu" in versions:
        versions["xgboost"] = versions["xgboost-cpu"]
    versions.pop("xgboost-cpu", None)
    return versions


def environment() -> dict[str, Any]:
    """The machine and interpreter a model was trained on."""
    return {
        "python_version": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }


def utc_now() -> str:
    """The current time in UTC, ISO 8601 to the second."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def build_lineage(
    *,
    data: dict[str, Any],
    settings: dict[str, Any],
    seed: int,
    timings: dict[str, float],
    started_at: str,
    search_settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the ``lineage.json`` document.

    Parameters
    ----------
    data
        The training data's description: ``source``, ``fingerprint``, ``n_rows``,
        ``n_columns``, ``target``, ``task``, rows dropped and why.
    settings
        Every setting the user passed to training (after defaults were applied).
    seed
        The random seed.
    timings
        Seconds spent per phase (``read``, ``schema``, ``checks``, ``search``, ``total``...).
    started_at
        When training started (ISO 8601, UTC).
    search_settings
        The settings the search engine reports it used (resolved metric, folds, ...).
    """
    return {
        "created_at": utc_now(),
        "started_at": started_at,
        "data": data,
        "settings": settings,
        "search_settings": search_settings or {},
        "seed": seed,
        "timings": {key: round(float(value), 3) for key, value in timings.items()},
        "seconds_taken": round(float(timings.get("total", 0.0)), 3),
        "versions": library_versions(),
        "environment": environment(),
    }
