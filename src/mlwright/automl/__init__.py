"""AutoML: the search that turns a table and a target into the most accurate model a time
budget allows (portfolio, cross-validation, Optuna tuning, ensemble selection, refit)."""

from __future__ import annotations

from mlwright.automl._metrics import Metric, default_metric, get_metric, metric_names
from mlwright.automl._predictor import Predictor
from mlwright.automl._search import SearchResult, search
from mlwright.automl.families import FAMILY_NAMES

#: Model family names accepted by ``search(models=...)``.
FAMILIES = FAMILY_NAMES


def available_families() -> tuple[str, ...]:
    """Model family names accepted by ``search(models=...)``."""
    return FAMILY_NAMES


__all__ = [
    "FAMILIES",
    "Metric",
    "Predictor",
    "SearchResult",
    "available_families",
    "default_metric",
    "get_metric",
    "metric_names",
    "search",
]
